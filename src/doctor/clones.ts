/**
 * CLONES_DIR: writable by this process, and its clones open. Cheap and
 * bounded: one read-only command per clone (`hg log -r tip`, `git rev-parse`),
 * a few at a time, and whatever is not checked within the time budget is
 * counted as such rather than waited for.
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../core/config.ts";
import { minimalEnv, runTool } from "../vcs/run-tool.ts";
import { type CheckResult, reason, result } from "./check.ts";

const NEEDED_BY = ["worker hg-sync", "dashboard"];
const PARALLEL = 4;
const TOOL_TIMEOUT_MS = 5_000;
const HG_ENV = minimalEnv({ HGPLAIN: "1", HGRCPATH: "", HOME: "/nonexistent" });
const GIT_ENV = minimalEnv({ HOME: "/nonexistent", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" });

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** The nearest ancestor that exists, for a folder that does not. */
async function nearestExisting(folder: string): Promise<string> {
  let current = path.dirname(folder);
  while (!(await exists(current)) && path.dirname(current) !== current) current = path.dirname(current);
  return current;
}

async function writableCheck(dir: string): Promise<CheckResult> {
  const shown = path.resolve(dir);
  const fix = "point CLONES_DIR at a folder this user can write (on shared storage when workers run on several machines)";
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
  if (info instanceof Error) {
    // ENOTDIR: a file stands where a folder of the path should be.
    if (info.code !== "ENOENT" && info.code !== "ENOTDIR") return result("clones dir", NEEDED_BY, "fail", `${shown}: ${reason(info)}`, fix);
    const ancestor = await nearestExisting(path.resolve(dir));
    const ancestorInfo = await stat(ancestor).catch(() => undefined);
    if (!ancestorInfo?.isDirectory()) return result("clones dir", NEEDED_BY, "fail", `${shown} cannot be created: ${ancestor} is not a folder`, fix);
    return result("clones dir", NEEDED_BY, "warn", `${shown} does not exist yet (the worker creates it under ${ancestor})`, "run the worker, or create it");
  }
  if (!info.isDirectory()) return result("clones dir", NEEDED_BY, "fail", `${shown} is not a folder`, fix);
  // Write for real: permission bits say nothing to root, or of a read-only mount.
  const probe = path.join(dir, `.doctor-${randomBytes(6).toString("hex")}`);
  try {
    await mkdir(probe);
    await rmdir(probe);
  } catch (error) {
    return result("clones dir", NEEDED_BY, "fail", `${shown} is not writable: ${reason(error)}`, fix);
  }
  return result("clones dir", NEEDED_BY, "ok", `${shown} is writable`);
}

/** `<CLONES_DIR>/<host>/<name>` folders (clone-path.ts), leaving out temporaries of clones in progress. */
async function cloneFolders(dir: string): Promise<string[]> {
  const folders: string[] = [];
  for (const host of await readdir(dir, { withFileTypes: true })) {
    if (!host.isDirectory() || host.name.startsWith(".")) continue;
    for (const clone of await readdir(path.join(dir, host.name), { withFileTypes: true })) {
      if (clone.isDirectory() && !/\.(tmp|broken)-/.test(clone.name)) folders.push(path.join(dir, host.name, clone.name));
    }
  }
  return folders.sort();
}

/** Undefined when the clone opens, else why not. */
async function cloneProblem(folder: string, signal: AbortSignal): Promise<string | undefined> {
  const timeout = AbortSignal.any([signal, AbortSignal.timeout(TOOL_TIMEOUT_MS)]);
  try {
    if (await exists(path.join(folder, ".hg"))) {
      await runTool("hg", ["--cwd", folder, "log", "-r", "tip", "--template", "{node}"], { env: HG_ENV, signal: timeout, maxBytes: 1024 });
    } else if (await exists(path.join(folder, "HEAD"))) {
      await runTool("git", ["-C", folder, "rev-parse", "--git-dir"], { env: GIT_ENV, signal: timeout, maxBytes: 1024 });
    } else {
      return "neither an hg nor a git clone";
    }
    return undefined;
  } catch (error) {
    return reason(error);
  }
}

async function healthCheck(dir: string, budgetMs: number): Promise<CheckResult> {
  const folders = await cloneFolders(dir);
  if (folders.length === 0) return result("clones", NEEDED_BY, "ok", "no clones yet");
  const deadline = AbortSignal.timeout(budgetMs);
  const broken: string[] = [];
  let checked = 0;
  let next = 0;
  const lane = async () => {
    while (next < folders.length && !deadline.aborted) {
      const folder = folders[next++]!;
      const problem = await cloneProblem(folder, deadline);
      if (deadline.aborted) return;
      checked++;
      if (problem) broken.push(`${path.relative(dir, folder)} (${problem})`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  const unchecked = folders.length - checked;
  const late = unchecked ? `; ${unchecked} not checked within ${budgetMs / 1000} s` : "";
  if (broken.length) {
    return result(
      "clones",
      NEEDED_BY,
      "warn",
      `${broken.length} of ${checked} do not open: ${broken.slice(0, 3).join("; ")}${broken.length > 3 ? "; …" : ""}${late}`,
      "the worker repairs or re-clones a broken clone at its next sync; a folder that is no clone of ours can be deleted",
    );
  }
  return result("clones", NEEDED_BY, "ok", `${checked} open${late}`);
}

export async function checkClones(config: Config, budgetMs: number): Promise<CheckResult[]> {
  const writable = await writableCheck(config.clones.dir);
  if (writable.status === "warn") return [writable, result("clones", NEEDED_BY, "ok", "no clones yet")];
  if (writable.status !== "ok") return [writable, result("clones", NEEDED_BY, "skip", "not checked: no usable clones folder")];
  return [writable, await healthCheck(config.clones.dir, budgetMs)];
}
