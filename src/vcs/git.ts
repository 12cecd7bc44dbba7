/**
 * git back end: the `git` command through runTool, for everything (clone and
 * fetch included: simple-git's guard refuses the very `-c` options and GIT_*
 * variables that lock git down here, so we pass a fixed argument list
 * ourselves and let git enforce the transport rules).
 *
 * Every call runs without system or user config (GIT_CONFIG_NOSYSTEM,
 * GIT_CONFIG_GLOBAL=/dev/null, HOME=/nonexistent: no credential helper,
 * proxy, url rewrite or hook from the machine) and without prompts. Network
 * calls only speak http(s) (`protocol.allow=never` plus http/https) and
 * follow no redirect at all: git cannot restrict a redirect to a host
 * (`http.followRedirects=initial`, its default, follows one to anywhere), so
 * a tracked URL that redirects fails with "returned error: 301".
 *
 * Clones are bare. Fetch always names the URL from the database rather than
 * a configured remote, and maps branches and tags onto local refs. History is
 * read through git-history.ts (length-framed and NUL-framed output).
 */
import { lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../core/log.ts";
import { assertRevision, type ChangesetRecord, type DiffResult, type TransferOptions, type VcsBackend } from "./backend.ts";
import { CatFileBatchReader, DiffTreeReader, parseCommitObject } from "./git-history.ts";
import { MissingRevisionError } from "./missing-revision-error.ts";
import { minimalEnv, progressLogger, runTool, streamToolLines, ToolError } from "./run-tool.ts";

const GIT_ENV = minimalEnv({
  HOME: "/nonexistent",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  GIT_ASKPASS: "/bin/false",
});
/** Options of every git call that talks to a server. */
const GIT_NETWORK_CONFIG = [
  "-c",
  "protocol.allow=never",
  "-c",
  "protocol.http.allow=always",
  "-c",
  "protocol.https.allow=always",
  "-c",
  "http.followRedirects=false",
  "-c",
  "credential.helper=",
  "-c",
  "core.askPass=/bin/false",
];
const FETCH_REFSPECS = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

function git(repoPath: string, args: string[], options: Omit<Parameters<typeof runTool>[2], "env"> = {}) {
  return runTool("git", ["--git-dir", repoPath, ...args], { ...options, env: GIT_ENV });
}

/** A network call; a redirect it refused is said so, since git only reports the status code. */
async function network(args: string[], { log, signal }: TransferOptions, what: string): Promise<void> {
  try {
    await runTool("git", [...GIT_NETWORK_CONFIG, ...args], { env: GIT_ENV, signal, onStderrLine: progressLogger(log, what) });
  } catch (error) {
    const redirect = error instanceof ToolError ? /returned error: (30[1278])\b/.exec(error.detail) : null;
    if (redirect) {
      const { command, code } = error as ToolError;
      throw new ToolError(
        command,
        code,
        `fatal: the server answered ${redirect[1]} (a redirect); redirects are not followed: track the URL it redirects to if its host is allowed`,
      );
    }
    throw error;
  }
}

function fetch(repoPath: string, url: string, options: TransferOptions) {
  return network(["--git-dir", repoPath, "fetch", "--prune", "--progress", "--", url, ...FETCH_REFSPECS], options, "git fetch");
}

/**
 * Reads full records of `revisions` (hex), in their order. cat-file and
 * diff-tree run side by side when every revision is a full id (always, in
 * practice); an abbreviated one must first be resolved by cat-file.
 */
async function readRecords(repoPath: string, revisions: string[]): Promise<ChangesetRecord[]> {
  // Each commit is parsed as soon as cat-file has delivered it; its files are filled in below.
  const records: Array<ChangesetRecord | undefined> = [];
  const objects = new CatFileBatchReader((answer) => {
    records.push("missing" in answer || answer.type !== "commit" ? undefined : parseCommitObject(answer.oid, answer.body, []));
  });
  const diffs = new DiffTreeReader();
  const readFiles = (ids: string[]) =>
    git(repoPath, ["diff-tree", "--stdin", "-z", "-r", "--root", "--no-renames", "--no-ext-diff", "--name-status"], {
      input: `${ids.join("\n")}\n`,
      onStdout: (chunk) => diffs.push(chunk),
    });
  const allFull = revisions.every((rev) => rev.length === 40 || rev.length === 64);
  const [read, early] = await Promise.allSettled([
    git(repoPath, ["cat-file", "--batch"], { input: `${revisions.join("\n")}\n`, onStdout: (chunk) => objects.push(chunk) }),
    allFull ? readFiles(revisions) : Promise.resolve(undefined),
  ]);
  if (read.status === "rejected") throw read.reason;
  const answered = objects.end();
  if (answered !== revisions.length) throw new Error(`git cat-file answered ${answered} of ${revisions.length} revisions`);
  const commits = records.map((record, i) => {
    if (!record) throw new MissingRevisionError(revisions[i]!);
    return record;
  });
  if (early.status === "rejected") throw early.reason;
  if (!allFull) await readFiles(commits.map((c) => c.revision));
  const files = diffs.end();
  for (const commit of commits) commit.files = files.get(commit.revision) ?? [];
  return commits;
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

  async clone(url: string, dest: string, options: TransferOptions) {
    await network(["clone", "--bare", "--no-tags", "--progress", "--", url, dest], options, "git clone");
    // A bare clone maps branches 1:1 already; fetch below keeps doing so.
    await fetch(dest, url, options);
  },

  async pull(repoPath: string, url: string, options: TransferOptions) {
    await fetch(repoPath, url, options);
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

  async *ancestors(repoPath: string, heads: string[], exclude: string[] = [], batchSize = 2000) {
    if (heads.length === 0) return;
    // git sorts the whole list before the first line (--reverse): that memory is git's, not ours.
    yield* streamToolLines("git", ["--git-dir", repoPath, "rev-list", "--topo-order", "--reverse", "--stdin"], {
      env: GIT_ENV,
      batchSize,
      input: `${[...heads.map(assertRevision), ...exclude.map((rev) => `^${assertRevision(rev)}`)].join("\n")}\n`,
    });
  },

  async countAncestors(repoPath: string, heads: string[]) {
    if (heads.length === 0) return 0;
    const { stdout } = await git(repoPath, ["rev-list", "--count", "--stdin"], { input: `${heads.map(assertRevision).join("\n")}\n` });
    return Number(stdout.toString("utf8").trim());
  },

  async *readChangesets(repoPath: string, revisions: string[], batchSize = 2000) {
    for (let start = 0; start < revisions.length; start += batchSize) {
      yield await readRecords(repoPath, revisions.slice(start, start + batchSize).map(assertRevision));
    }
  },

  async diff(repoPath: string, from: string, to: string, { maxBytes }: { maxBytes: number }): Promise<DiffResult> {
    const { stdout, truncated } = await git(repoPath, ["diff", "--no-color", "--no-ext-diff", assertRevision(from), assertRevision(to), "--"], { maxBytes });
    return { text: stdout.toString("utf8"), truncated };
  },
};
