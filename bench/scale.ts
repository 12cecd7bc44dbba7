/**
 * Real sizes (`npm run bench:scale`): imports of generated histories of
 * 10,000 to 1,000,000 changesets by a real `node dist/cli.js worker hg-sync`
 * process (run `npm run build` first), against the stand-in servers
 * (src/stand-ins/hg-server.ts: `hg serve` + pushlog; git-upstream.ts: `git
 * http-backend`), started with `pulse-bridge track repo` like users do.
 *
 * Cases (`--sizes KIND:N,N… KIND:N…`; default: every size below):
 * - `git:10000,100000,1000000` — linear history with a merge every 50
 *   commits, built by `git fast-import`; the import is the first sync that
 *   `track repo --kind git` enqueues (reconcile: every branch's history);
 * - `hg:10000,100000,200000` — "many pushes": pushes of 1,000 changesets,
 *   imported through the pushlog;
 * - `hg-onepush:10000,100000` — "one huge push": the whole history as the
 *   repository's first (and only) push.
 * Histories are generated once and kept in BENCH_SCALE_CACHE (default
 * ~/.cache/pulse-bridge/bench-scale/<kind>-<size>): hg through hg-commits.py's
 * bulk mode (~1,100 changesets/s, one transaction), git through fast-import.
 * `--generate-only` fills the cache and stops.
 *
 * For each case it prints the import's time (the sync job's processedOn →
 * finishedOn, clone included), its rate, the worker process's own peak RSS
 * (VmHWM of /proc/<pid>/status: the generator and the stand-ins are other
 * processes) and CPU time, and the rows stored against the expected counts.
 * The worker's log (progress lines) goes to test-artifacts/bench-scale/.
 * BENCH_SCALE_NODE_ARGS adds node options to the worker only (V8 heap
 * sizes, `--heap-prof`); BENCH_SCALE_HEAP_SNAPSHOT=S takes a heap snapshot
 * of it S seconds after it started.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { appendFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { startGitUpstream, writeGeneratedHistory } from "../src/stand-ins/git-upstream.ts";
import { startHgCommitWriter } from "../src/stand-ins/hg-commit-writer.ts";
import { startHgServer } from "../src/stand-ins/hg-server.ts";
import { createTestEnvironment } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CACHE = process.env.BENCH_SCALE_CACHE ?? path.join(homedir(), ".cache", "pulse-bridge", "bench-scale");
const LOGS = path.join(ROOT, "test-artifacts", "bench-scale");
const HG_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HGPLAIN: "1", HGRCPATH: "", HGENCODING: "utf-8", HOME: "/nonexistent" };
const GIT_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };

type Kind = "git" | "hg" | "hg-onepush";
const DEFAULT_SIZES: Record<Kind, number[]> = { git: [10_000, 100_000, 1_000_000], hg: [10_000, 100_000, 200_000], "hg-onepush": [10_000, 100_000] };
const PUSH_SIZE = 1000;

function parseSizes(argv: string[]): Array<{ kind: Kind; size: number }> {
  const index = argv.indexOf("--sizes");
  const specs: string[] = [];
  if (index >= 0) for (let i = index + 1; i < argv.length && !argv[i]!.startsWith("--"); i++) specs.push(argv[i]!);
  const chosen: Partial<Record<Kind, number[]>> = {};
  for (const spec of specs) {
    const [kind, list] = spec.split(":");
    if (!kind || !list || !(kind in DEFAULT_SIZES))
      throw new Error(`--sizes ${spec}: expected KIND:N,N with KIND one of ${Object.keys(DEFAULT_SIZES).join(", ")}`);
    chosen[kind as Kind] = list.split(",").map((n) => {
      const size = Number(n.replace(/_/g, ""));
      if (!Number.isInteger(size) || size < 100) throw new Error(`--sizes ${spec}: ${n} is not a size (an integer >= 100)`);
      return size;
    });
  }
  const sizes = specs.length ? chosen : DEFAULT_SIZES;
  return (Object.keys(sizes) as Kind[]).flatMap((kind) => sizes[kind]!.map((size) => ({ kind, size })));
}

// --- histories ---------------------------------------------------------------

/** A bare git repository of exactly `size` commits (writeGeneratedHistory: a merge every 50), packed. */
async function gitHistory(size: number): Promise<string> {
  const dir = path.join(CACHE, `git-${size}.git`);
  if (existsSync(path.join(dir, "bench-complete"))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(path.dirname(tmp), { recursive: true });
  await run("git", ["init", "-q", "--bare", "-b", "main", tmp], { env: GIT_ENV });
  const started = Date.now();
  await writeGeneratedHistory(tmp, size);
  // One pack, as a served repository would have.
  await run("git", ["--git-dir", tmp, "repack", "-adq"], { env: GIT_ENV, maxBuffer: 1 << 26 });
  await writeFile(path.join(tmp, "bench-complete"), `${size}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  console.log(`generated git history of ${size} commits in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);
  return dir;
}

/** An hg repository of exactly `size` linear changesets and its nodes, oldest first. */
async function hgHistory(size: number): Promise<{ repo: string; nodes: string[] }> {
  const dir = path.join(CACHE, `hg-${size}`);
  const nodesFile = path.join(dir, "nodes.txt");
  if (!existsSync(path.join(dir, "bench-complete"))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await run("hg", ["init", path.join(tmp, "repo")], { env: HG_ENV });
    const started = Date.now();
    const writer = startHgCommitWriter(HG_ENV);
    try {
      for (let start = 0; start < size; start += 10_000) {
        const nodes = await writer.generate(path.join(tmp, "repo"), Math.min(10_000, size - start), { start });
        await appendFile(path.join(tmp, "nodes.txt"), `${nodes.join("\n")}\n`);
      }
    } finally {
      writer.close();
    }
    await writeFile(path.join(tmp, "bench-complete"), `${size}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    console.log(`generated hg history of ${size} changesets in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);
  }
  const nodes = (await readFile(nodesFile, "utf8")).split("\n").filter(Boolean);
  if (nodes.length !== size) throw new Error(`${nodesFile} lists ${nodes.length} nodes, expected ${size}: remove ${dir}`);
  return { repo: path.join(dir, "repo"), nodes };
}

// --- one import ----------------------------------------------------------------

interface Measured {
  kind: Kind;
  size: number;
  seconds: number;
  rate: number;
  /** RSS once the pool has started, before the import. */
  idleRssMb: number;
  peakRssMb: number;
  cpuSeconds: number;
  changesets: number;
  pushes: number;
  pushChangesets: number;
  expected: { changesets: number; pushes: number; pushChangesets: number };
  ok: boolean;
}

/** The worker's own memory and CPU, from /proc (Linux). */
async function processFigures(pid: number): Promise<{ peakRssMb: number; cpuSeconds: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  // utime and stime: fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { peakRssMb: Math.round(hwm / 1024), cpuSeconds: ticks / 100 };
}

function cli(args: string[], env: Record<string, string>): Promise<string> {
  return run(process.execPath, [path.join(ROOT, "dist", "cli.js"), ...args], { cwd: ROOT, env: { ...process.env, ...env } }).then((r) => r.stdout);
}

async function runCase(kind: Kind, size: number): Promise<Measured> {
  const env = await createTestEnvironment(`scale-${kind}-${size}`, { RECONCILE_INTERVAL: "1h", LOG_LEVEL: "info" });
  const git = kind === "git" ? await startGitUpstream() : undefined;
  const hg = kind === "git" ? undefined : await startHgServer();
  let worker: ChildProcess | undefined;
  const connection = new Redis(env.config.redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue("hg-sync", { connection, prefix: env.config.redis.prefix });
  try {
    let url: string;
    let expected: Measured["expected"];
    if (git) {
      url = await git.adoptRepo(`bench/scale-${size}`, await gitHistory(size));
      expected = { changesets: size, pushes: 0, pushChangesets: 0 };
    } else {
      const { repo, nodes } = await hgHistory(size);
      const pushes: string[][] = [];
      if (kind === "hg-onepush") pushes.push(nodes);
      else for (let i = 0; i < nodes.length; i += PUSH_SIZE) pushes.push(nodes.slice(i, i + PUSH_SIZE));
      url = await hg!.adoptRepo(`bench/scale-${size}`, repo, pushes);
      expected = { changesets: size, pushes: pushes.length, pushChangesets: size };
    }
    // The import users start: track (which enqueues the first sync), then a worker.
    const tracked = JSON.parse(await cli(["track", "repo", url, "--kind", git ? "git" : "hg", "--json"], env.env)) as { sync: { jobId?: string } };
    const jobId = tracked.sync.jobId;
    if (!jobId) throw new Error("track did not enqueue a sync");
    await mkdir(LOGS, { recursive: true });
    const logFile = path.join(LOGS, `${kind}-${size}.log`);
    const log = createWriteStream(logFile);
    // BENCH_SCALE_HEAP_SNAPSHOT=S: a heap snapshot of the worker S seconds into the import (profiling), in LOGS.
    const snapshotAfter = Number(process.env.BENCH_SCALE_HEAP_SNAPSHOT ?? 0);
    // BENCH_SCALE_NODE_ARGS: node options for the worker only (e.g. V8 heap sizes), to compare.
    const nodeArgs = [
      ...(process.env.BENCH_SCALE_NODE_ARGS ?? "").split(/\s+/).filter(Boolean),
      ...(snapshotAfter ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${LOGS}`] : []),
    ];
    worker = spawn(process.execPath, [...nodeArgs, path.join(ROOT, "dist", "cli.js"), "worker", "hg-sync", "--concurrency", "1"], {
      cwd: ROOT,
      env: { ...process.env, ...env.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    worker.stderr!.pipe(log);
    let started = false;
    worker.stderr!.on("data", (chunk: Buffer) => {
      if (chunk.includes("worker pool started")) started = true;
    });
    const pid = worker.pid!;
    await waitFor("the worker to start", () => started, { timeoutMs: 60_000, intervalMs: 20 });
    const idleRssMb = Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024);
    if (snapshotAfter) setTimeout(() => worker?.kill("SIGUSR2"), snapshotAfter * 1000).unref();
    const job = await waitFor(
      `the import of ${kind} ${size}`,
      async () => {
        const state = await queue.getJobState(jobId);
        if (state !== "completed" && state !== "failed") return undefined;
        return queue.getJob(jobId);
      },
      { timeoutMs: 3 * 60 * 60_000, intervalMs: 500 },
    );
    const figures = await processFigures(pid);
    if (!job || job.failedReason) throw new Error(`import failed: ${job?.failedReason} (log: ${logFile})`);
    const seconds = (job.finishedOn! - job.processedOn!) / 1000;
    const [changesets, pushes, pushChangesets] = await Promise.all([env.db.changeset.count(), env.db.push.count(), env.db.pushChangeset.count()]);
    const ok = changesets === expected.changesets && pushes === expected.pushes && pushChangesets === expected.pushChangesets;
    return { kind, size, seconds, rate: Math.round(changesets / seconds), idleRssMb, ...figures, changesets, pushes, pushChangesets, expected, ok };
  } finally {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((resolve) => worker!.once("exit", resolve));
      worker.kill("SIGTERM");
      await exited;
    }
    await queue.close();
    connection.disconnect();
    await git?.close();
    await hg?.close();
    await env.cleanup();
  }
}

function row(m: Measured): string {
  const rows = `${m.changesets} changesets${m.expected.pushes ? `, ${m.pushes} pushes, ${m.pushChangesets} push links` : ""}`;
  return [
    m.kind.padEnd(10),
    String(m.size).padStart(9),
    `${m.seconds.toFixed(1)} s`.padStart(9),
    `${m.rate} cs/s`.padStart(11),
    `${m.peakRssMb} MB`.padStart(8),
    `${m.idleRssMb} MB`.padStart(8),
    `${m.cpuSeconds.toFixed(1)} s`.padStart(9),
    `${rows} ${m.ok ? "(as expected)" : `(EXPECTED ${JSON.stringify(m.expected)})`}`,
  ].join("  ");
}

async function main() {
  const cases = parseSizes(process.argv.slice(2));
  if (process.argv.includes("--generate-only")) {
    for (const { kind, size } of cases) await (kind === "git" ? gitHistory(size) : hgHistory(size));
    return;
  }
  if (!existsSync(path.join(ROOT, "dist", "cli.js")))
    throw new Error("dist/cli.js missing: run `npm run build` first (the worker runs as `node dist/cli.js worker hg-sync`)");
  console.log(
    `${"kind".padEnd(10)}  ${"size".padStart(9)}  ${"time".padStart(9)}  ${"rate".padStart(11)}  ${"peak RSS".padStart(8)}  ${"idle RSS".padStart(8)}  ${"CPU".padStart(9)}  rows stored`,
  );
  const results: Measured[] = [];
  for (const { kind, size } of cases) {
    // Generation is not measured: the cache is filled before the case starts.
    if (kind === "git") await gitHistory(size);
    else await hgHistory(size);
    const measured = await runCase(kind, size);
    results.push(measured);
    console.log(row(measured));
  }
  if (results.some((m) => !m.ok)) process.exitCode = 1;
}

await main();
process.exit(process.exitCode ?? 0);
