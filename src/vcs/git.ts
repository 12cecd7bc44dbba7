/**
 * git back end: simple-git for clone and fetch (it refuses `ext::`,
 * `--upload-pack` and friends on top of our URL policy), plain `git` through
 * runTool for reading history and bounded diffs (simple-git buffers whole
 * outputs as strings).
 *
 * Clones are bare. Fetch always names the URL from the database rather than
 * a configured remote, and maps branches and tags onto local refs.
 */
import { lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import type { Logger } from "../log.ts";
import { assertRevision, cleanText, type ChangesetRecord, type DiffResult, type FileAction, type TransferOptions, type VcsBackend } from "./backend.ts";
import { MissingRevisionError } from "./missing-revision-error.ts";
import { minimalEnv, runTool } from "./run-tool.ts";

// No user or system gitconfig, no prompts, no credential helpers.
const GIT_ENV = minimalEnv({
  HOME: "/nonexistent",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  GIT_ASKPASS: "/bin/false",
});
// simple-git's environment guard refuses most GIT_* variables (several can
// run code); HOME=/nonexistent already means there is no user config, and
// with no terminal git cannot prompt.
const SIMPLE_GIT_ENV = minimalEnv({ HOME: "/nonexistent" });
const FETCH_REFSPECS = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

function client(baseDir: string, log?: Logger, what = "git"): SimpleGit {
  let last = 0;
  return simpleGit({
    baseDir,
    progress: log
      ? ({ stage, progress }) => {
          const now = Date.now();
          if (now - last >= 10_000) {
            last = now;
            log.info({ stage, percent: progress }, `${what} in progress`);
          }
        }
      : undefined,
  }).env(SIMPLE_GIT_ENV);
}

function git(repoPath: string, args: string[], options: { maxBytes?: number } = {}) {
  return runTool("git", ["--git-dir", repoPath, ...args], { env: GIT_ENV, ...options });
}

const ACTIONS: Record<string, FileAction> = { A: "added", M: "modified", D: "removed", T: "modified" };

/** Parses `git log --format=%x1e%H%x00%P%x00%an <%ae>%x00%at%x00%B%x00 --name-status -z --no-renames`. */
function parseLog(output: string): ChangesetRecord[] {
  const records: ChangesetRecord[] = [];
  for (const chunk of output.split("\x1e")) {
    if (!chunk) continue;
    const tokens = chunk.split("\0");
    const [hash = "", parents = "", author = "", seconds = "0", body = ""] = tokens;
    const files: ChangesetRecord["files"] = [];
    for (let i = 5; i < tokens.length; i++) {
      const status = tokens[i]!.trim();
      const action = status ? ACTIONS[status[0]!] : undefined;
      if (action && i + 1 < tokens.length) {
        files.push({ path: cleanText(tokens[i + 1]!), action });
        i++;
      }
    }
    records.push({
      revision: hash.toLowerCase(),
      author: cleanText(author),
      description: cleanText(body.replace(/\n+$/, "")),
      date: new Date(Number(seconds) * 1000),
      branch: null,
      parents: parents.split(" ").filter(Boolean),
      files,
    });
  }
  return records;
}

async function removeStaleLocks(dir: string, staleAfterMs: number, depth: number, found: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && depth > 0 && entry.name !== "objects") await removeStaleLocks(full, staleAfterMs, depth - 1, found);
    else if (entry.name.endsWith(".lock")) {
      const stat = await lstat(full).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > staleAfterMs) {
        await rm(full, { force: true });
        found.push(full);
      }
    }
  }
}

export const gitBackend: VcsBackend = {
  kind: "git",

  async clone(url: string, dest: string, { log }: TransferOptions) {
    await client(path.dirname(dest), log, "git clone").clone(url, dest, ["--bare", "--no-tags"]);
    // A bare clone maps branches 1:1 already; fetch below keeps doing so.
    await client(dest).raw(["fetch", "--prune", "--", url, ...FETCH_REFSPECS]);
  },

  async pull(repoPath: string, url: string, { log }: TransferOptions) {
    await client(repoPath, log, "git fetch").raw(["fetch", "--prune", "--progress", "--", url, ...FETCH_REFSPECS]);
  },

  async isUsable(repoPath: string) {
    try {
      await git(repoPath, ["rev-parse", "--git-dir"]);
      return (await lstat(path.join(repoPath, "objects")).catch(() => undefined))?.isDirectory() ?? false;
    } catch {
      return false;
    }
  },

  async repair(repoPath: string, staleAfterMs: number, log: Logger) {
    const found: string[] = [];
    // index.lock, HEAD.lock, config.lock, packed-refs.lock, refs/**/x.lock
    await removeStaleLocks(repoPath, staleAfterMs, 6, found);
    const done = found.map((file) => `removed stale ${path.relative(repoPath, file)}`);
    if (done.length) log.warn({ repoPath, repairs: done }, "repaired clone");
    return done;
  },

  async heads(repoPath: string) {
    const { stdout } = await git(repoPath, ["for-each-ref", "--format=%(objectname)", "refs/heads"]);
    return [...new Set(stdout.toString("utf8").split("\n").filter(Boolean))];
  },

  async ancestors(repoPath: string, heads: string[], exclude: string[] = []) {
    if (heads.length === 0) return [];
    const { stdout } = await runTool("git", ["--git-dir", repoPath, "rev-list", "--topo-order", "--reverse", "--stdin"], {
      env: GIT_ENV,
      input: [...heads.map(assertRevision), ...exclude.map((rev) => `^${assertRevision(rev)}`)].join("\n") + "\n",
    });
    return stdout.toString("utf8").split("\n").filter(Boolean);
  },

  async *readChangesets(repoPath: string, revisions: string[], batchSize = 2000) {
    for (let start = 0; start < revisions.length; start += batchSize) {
      const slice = revisions.slice(start, start + batchSize).map(assertRevision);
      const { stdout } = await runTool(
        "git",
        ["--git-dir", repoPath, "log", "--no-walk=unsorted", "--stdin", "--format=%x1e%H%x00%P%x00%an <%ae>%x00%at%x00%B%x00", "--name-status", "-z", "--no-renames"],
        { env: GIT_ENV, input: slice.join("\n") + "\n" },
      );
      const byHash = new Map(parseLog(stdout.toString("utf8")).map((r) => [r.revision, r]));
      yield slice.map((rev) => {
        const found = byHash.get(rev) ?? [...byHash.values()].find((r) => r.revision.startsWith(rev));
        if (!found) throw new MissingRevisionError(rev);
        return found;
      });
    }
  },

  async diff(repoPath: string, from: string, to: string, { maxBytes }: { maxBytes: number }): Promise<DiffResult> {
    const { stdout, truncated } = await git(repoPath, ["diff", "--no-color", "--no-ext-diff", assertRevision(from), assertRevision(to), "--"], { maxBytes });
    return { text: stdout.toString("utf8"), truncated };
  },
};
