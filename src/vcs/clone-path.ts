/**
 * Where a repository's clone lives under CLONES_DIR.
 *
 * The folder is derived from the URL but never trusted: `<host>/<path>-<hash>`
 * where every character outside a small alphabet becomes `_`, path segments
 * are flattened with `--` (so no clone folder can sit inside another clone's
 * working tree), and a short hash of the whole URL keeps distinct URLs apart
 * after the mapping. The result is checked to be inside `clonesDir`.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { repositoryKey } from "../core/urls.ts";

const SAFE_WORD = /[^A-Za-z0-9._-]/g;

function safeWord(text: string, fallback: string): string {
  const word = text
    .replace(SAFE_WORD, "_")
    .replace(/^[.-]+/, (dots) => "_".repeat(dots.length))
    .slice(0, 80);
  return word === "" ? fallback : word;
}

export function clonePathFor(clonesDir: string, repoUrl: string): string {
  const key = repositoryKey(repoUrl);
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 10);
  let host = "invalid";
  let segments: string[] = [];
  try {
    const parsed = new URL(repoUrl);
    host = safeWord(parsed.host.toLowerCase().replace(":", "_"), "invalid");
    segments = decodeURIComponent(parsed.pathname)
      .split("/")
      .filter((segment) => segment !== "" && segment !== "." && segment !== "..");
  } catch {
    // Not a URL: the hash alone names it (such URLs are refused before any clone anyway).
  }
  const name = `${
    segments
      .map((segment) => safeWord(segment, "_"))
      .join("--")
      .slice(0, 160) || "repo"
  }-${hash}`;
  const root = path.resolve(clonesDir);
  const target = path.resolve(root, host, name);
  if (!target.startsWith(root + path.sep)) throw new Error(`clone path for ${JSON.stringify(repoUrl)} escapes the clones folder`);
  return target;
}
