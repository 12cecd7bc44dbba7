/**
 * Mercurial back end: the `hg` command.
 *
 * HGPLAIN=1 and HGRCPATH="" make hg ignore every hgrc (system and user), so
 * no extension, hook, alias or pager configured on the machine runs inside a
 * worker. Clones are made with `--noupdate`: we only ever read history, and
 * `hg diff -r A -r B` works without a working copy.
 */
import { existsSync } from "node:fs";
import { access, lstat, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "../core/log.ts";
import {
  assertRevision,
  type ChangesetRecord,
  cleanText,
  type DiffResult,
  dateFromSeconds,
  type FileAction,
  type TransferOptions,
  type VcsBackend,
} from "./backend.ts";
import { MissingRevisionError } from "./missing-revision-error.ts";
import { minimalEnv, progressLogger, runTool, streamToolLines } from "./run-tool.ts";

/**
 * Mercurial follows HTTP redirects to any host and has no setting against it;
 * this extension (shipped next to this module, copied into dist/ by the
 * build) refuses every request to a host outside the list given with it, and
 * clone bundles are off (their manifest names other hosts, e.g. a CDN). The
 * list is the tracked URL's own host (which url-policy.ts has checked against
 * ALLOWED_HOSTS): a redirect to another path of the same host is followed,
 * one to any other host is refused before a connection is opened.
 */
const HOST_GUARD = fileURLToPath(new URL("./hg_host_guard.py", import.meta.url));

function networkArgs(url: string): string[] {
  // hg only warns when an extension fails to load and then runs without it.
  if (!existsSync(HOST_GUARD)) throw new Error(`hg host guard extension missing at ${HOST_GUARD}: refusing to talk to a server without it`);
  return [
    "--config",
    `extensions.pulsebridge_hostguard=${HOST_GUARD}`,
    "--config",
    `pulsebridge.allowed-hosts=${new URL(url).host}`,
    "--config",
    "ui.clonebundles=false",
  ];
}

// PYTHONDONTWRITEBYTECODE: loading the host guard must not write __pycache__ next to it.
const HG_ENV = minimalEnv({ HGPLAIN: "1", HGRCPATH: "", HGENCODING: "utf-8", HGUSER: "pulse-bridge", HOME: "/nonexistent", PYTHONDONTWRITEBYTECODE: "1" });
const BASE_ARGS = ["--noninteractive", "--config", "ui.report_untrusted=false"];
const NULL_NODE = "0".repeat(40);

// One JSON object per line. hg's json filter turns description bytes that
// are not UTF-8 into their latin-1 reading, so output is always valid UTF-8.
const LOG_TEMPLATE = "{dict(node, author, desc, branch, date=date|hgdate, p1=p1node, p2=p2node, adds=file_adds, dels=file_dels, mods=file_mods)|json}\\n";

function hg(args: string[], options: Omit<Parameters<typeof runTool>[2], "env"> = {}) {
  return runTool("hg", [...BASE_ARGS, ...args], { ...options, env: HG_ENV });
}

// chg (Mercurial's command server client, shipped with hg) answers read-only
// commands in ~20 ms instead of hg's ~120 ms start-up; its server exits after
// a minute idle. Only reads go through it: a pull or clone run by a chg
// server would outlive a killed worker and race its successor.
const CHG = process.env.PATH?.split(":").some((dir) => dir && existsSync(path.join(dir, "chg"))) ?? false;

function hgRead(args: string[], options: Omit<Parameters<typeof runTool>[2], "env"> = {}) {
  if (!CHG) return hg(args, options);
  return runTool("chg", [...BASE_ARGS, "--config", "chgserver.idletimeout=60", ...args], { ...options, env: HG_ENV });
}

interface LogLine {
  node: string;
  author: string;
  desc: string;
  branch: string;
  date: string;
  p1: string;
  p2: string;
  adds: string[];
  dels: string[];
  mods: string[];
}

function toRecord(line: LogLine): ChangesetRecord {
  const [seconds] = line.date.split(" ");
  const files: Array<{ path: string; action: FileAction }> = [
    ...line.adds.map((p) => ({ path: cleanText(p), action: "added" as const })),
    ...line.mods.map((p) => ({ path: cleanText(p), action: "modified" as const })),
    ...line.dels.map((p) => ({ path: cleanText(p), action: "removed" as const })),
  ];
  return {
    revision: line.node.toLowerCase(),
    author: cleanText(line.author),
    description: cleanText(line.desc),
    date: dateFromSeconds(Number(seconds)),
    branch: cleanText(line.branch),
    parents: [line.p1, line.p2].filter((p) => p !== NULL_NODE),
    files,
  };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Revset listing many revisions without hitting command-line limits: a file read by hg. */
function revsetOf(revisions: string[]): string {
  return revisions.map(assertRevision).join("+");
}

/** Like revsetOf, but a revision missing from the clone selects nothing instead of failing. */
function lenientRevsetOf(revisions: string[]): string {
  return revisions.map((rev) => `id(${assertRevision(rev)})`).join("+");
}

export const hgBackend: VcsBackend = {
  kind: "hg",

  async clone(url: string, dest: string, { log, signal }: TransferOptions) {
    // --stream copies the store files as they are (hg.mozilla.org serves
    // them; ~7x faster than a changegroup here); hg falls back to a normal
    // clone when the server does not offer it.
    await hg([...networkArgs(url), "clone", "--noupdate", "--stream", "--", url, dest], { signal, onStderrLine: progressLogger(log, "hg clone") });
  },

  async pull(repoPath: string, url: string, { log, signal }: TransferOptions) {
    await hg([...networkArgs(url), "pull", "-R", repoPath, "--", url], { signal, onStderrLine: progressLogger(log, "hg pull") });
  },

  async isUsable(repoPath: string) {
    // Cheap on purpose (it runs before every pull): a clone is made in a
    // temporary folder and renamed, so these files only exist once complete;
    // damage inside shows up as a failing pull, which repair() then handles.
    return (await exists(path.join(repoPath, ".hg", "requires"))) && (await exists(path.join(repoPath, ".hg", "store")));
  },

  async repair(repoPath: string, staleAfterMs: number, log: Logger) {
    const done: string[] = [];
    for (const lock of [path.join(repoPath, ".hg", "wlock"), path.join(repoPath, ".hg", "store", "lock")]) {
      const stat = await lstat(lock).catch(() => undefined);
      // hg's locks are symlinks named host:pid; it breaks them itself only on
      // the same host. On shared storage a killed worker's lock stays: past
      // the sync lock's TTL nobody else can be using it (we hold that lock).
      if (stat && Date.now() - stat.mtimeMs > staleAfterMs) {
        await rm(lock, { force: true });
        done.push(`removed stale ${path.relative(repoPath, lock)}`);
      }
    }
    if (await exists(path.join(repoPath, ".hg", "store", "journal"))) {
      await hg(["-R", repoPath, "recover"]).catch((error: Error) => log.warn({ err: error.message }, "hg recover failed"));
      done.push("hg recover");
    }
    if (done.length) log.warn({ repoPath, repairs: done }, "repaired clone");
    return done;
  },

  async heads(repoPath: string) {
    const { stdout } = await hgRead(["-R", repoPath, "heads", "--topo", "-T", "{node}\\n"]).catch((error) => {
      // An empty repository has no heads; hg says so with exit code 1.
      if (error?.code === 1) return { stdout: Buffer.alloc(0) };
      throw error;
    });
    return stdout.toString("utf8").split("\n").filter(Boolean);
  },

  async *ancestors(repoPath: string, heads: string[], exclude: string[] = [], batchSize = 2000) {
    if (heads.length === 0) return;
    const revset = exclude.length ? `only(${revsetOf(heads)}, ${revsetOf(exclude)})` : `::(${revsetOf(heads)})`;
    // Plain hg, not chg: the listing streams for as long as the import takes.
    yield* streamToolLines("hg", [...BASE_ARGS, "-R", repoPath, "log", "-r", `sort(${revset}, rev)`, "-T", "{node}\\n"], { env: HG_ENV, batchSize });
  },

  async countAncestors(repoPath: string, heads: string[]) {
    if (heads.length === 0) return 0;
    // One byte per revision, counted as it streams.
    let count = 0;
    await hgRead(["-R", repoPath, "log", "-r", `::(${revsetOf(heads)})`, "-T", "x"], {
      onStdout: (chunk) => {
        count += chunk.length;
      },
    });
    return count;
  },

  async *readChangesets(repoPath: string, revisions: string[], batchSize = 2000) {
    // One hg process per batch (its startup is ~0.1 s); records stream out as
    // hg writes them so storing can overlap with hg's work.
    for (let start = 0; start < revisions.length; start += batchSize) {
      const slice = revisions.slice(start, start + batchSize);
      const byNode = new Map<string, ChangesetRecord>();
      // Plain `-r <node>` arguments are the fastest selection (a revset of
      // 2,000 id() terms costs twice as much); if one is unknown hg refuses
      // them all, and the lenient revset then reads the ones that exist.
      const { stdout } = await hgRead(["-R", repoPath, "log", "--hidden", ...slice.flatMap((rev) => ["-r", assertRevision(rev)]), "-T", LOG_TEMPLATE]).catch(
        () => hgRead(["-R", repoPath, "log", "--hidden", "-r", lenientRevsetOf(slice), "-T", LOG_TEMPLATE]),
      );
      for (const text of stdout.toString("utf8").split("\n")) {
        if (!text) continue;
        const record = toRecord(JSON.parse(text) as LogLine);
        byNode.set(record.revision, record);
      }
      // Keep the caller's order (abbreviated revisions resolve by prefix).
      yield slice.map((rev) => {
        const wanted = rev.toLowerCase();
        const found = byNode.get(wanted) ?? [...byNode.values()].find((r) => r.revision.startsWith(wanted));
        if (!found) throw new MissingRevisionError(rev);
        return found;
      });
    }
  },

  async diff(repoPath: string, from: string, to: string, { maxBytes }: { maxBytes: number }): Promise<DiffResult> {
    const { stdout, truncated } = await hgRead(["-R", repoPath, "diff", "--git", "-r", assertRevision(from), "-r", assertRevision(to)], { maxBytes });
    return { text: stdout.toString("utf8"), truncated };
  },
};
