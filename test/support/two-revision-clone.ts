/**
 * A real hg clone in a test's CLONES_DIR, where hg-sync would have made it,
 * with two commits of one file: what the dashboard's diff endpoint reads.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { clonePathFor } from "../../src/vcs/clone-path.ts";

function hg(cwd: string, ...args: string[]): string {
  return execFileSync("hg", args, {
    cwd,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HGPLAIN: "1", HGUSER: "Test <test@example.org>" },
  });
}

/** Commits `file` with `first`, then `second`; returns both revisions, oldest first. */
export function createTwoRevisionClone(clonesDir: string, repoUrl: string, file: string, first: string, second: string): string[] {
  const clone = clonePathFor(clonesDir, repoUrl);
  mkdirSync(clone, { recursive: true });
  hg(clone, "init");
  writeFileSync(`${clone}/${file}`, first);
  hg(clone, "add", file);
  hg(clone, "commit", "-m", "first");
  writeFileSync(`${clone}/${file}`, second);
  hg(clone, "commit", "-m", "second");
  return hg(clone, "log", "-T", "{node}\n", "-r", "0:").trim().split("\n");
}
