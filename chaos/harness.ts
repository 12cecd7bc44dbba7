/**
 * One chaos run: real `node dist/cli.js` processes (by default bridge ×2,
 * worker tc-ingest ×2, worker hg-sync ×3) on the local broker and Postgres, a
 * private Redis (one server, a Sentinel setup or a Cluster:
 * chaos/redis-topology.ts), optionally a private PgBouncer in transaction
 * mode between the processes and PostgreSQL, the Queue API stand-in and an
 * hg upstream, all isolated like a test (own queues, exchanges, BullMQ
 * prefix, database, clones folder). Publishes the ledger at a steady rate
 * while injecting every fault (or only the Redis ones), holds the ledger's
 * tail back until the last fault has ended, then publishes it with one new
 * push per repository (proof that every role resumed by itself), waits for
 * the system to drain, and checks the ledger and the peak database
 * connections against their budget.
 *
 * Used by `npm run chaos` (chaos/run.ts) and, short, by test/chaos.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { closeQueues, openQueues, type Queues } from "../src/contract/queues.ts";
import { type Config, pulseFeeds } from "../src/core/config.ts";
import { createRedis } from "../src/core/redis.ts";
import { trackRepository } from "../src/jobs/hg-sync/tracking.ts";
import { type HgServer, startHgServer } from "../src/stand-ins/hg-server.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../src/stand-ins/queue-api-server.ts";
import { type PgBouncer, startPgBouncer } from "../test/support/pgbouncer.ts";
import { declareExchanges, openPublisher, type Publisher, queueDepths } from "../test/support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";
import { type ConnectionPeaks, watchConnections } from "./connections.ts";
import {
  closeBridgeConnections,
  deleteTaskclusterQueue,
  type FaultRecord,
  sigkillRestart,
  standInErrors,
  standInTimeouts,
  terminateDatabaseConnections,
} from "./faults.ts";
import { type FlakyProxy, startFlakyProxy } from "./flaky-proxy.ts";
import { buildLedger, hgPushEntry, type LedgerEntry } from "./ledger.ts";
import { ProcessGroup, ROOT } from "./processes.ts";
import { type ChaosRedis, type RedisTopologyKind, startChaosRedis } from "./redis-topology.ts";
import { type Verdict, verifyLedger } from "./verify.ts";

export interface ChaosOptions {
  messages: number;
  /** Publish rate, messages per second. */
  rate: number;
  seed: number;
  redisDownMs: number;
  /** Give up waiting for the drain after this long. */
  drainTimeoutMs: number;
  /** Where process logs go (kept); default test-artifacts/chaos-<id>. */
  logDir?: string;
  /** hg pushes that exist upstream per repository (when the hg-sync pool runs). */
  pushesPerRepository?: number;
  /** Progress lines (stderr by default). */
  report?: (line: string) => void;
  /** How Redis is deployed (default single: one private server). */
  redis?: RedisTopologyKind;
  /** sentinel: how many times the master is SIGKILLed in the run (default 3). */
  failovers?: number;
  /** cluster: the Redis fault kills the master of the run's hash tag (default) or every master. */
  clusterKill?: "owner" | "all";
  /** Give the processes a DATABASE_URL through a private PgBouncer (transaction mode) with this default_pool_size. */
  pgbouncer?: { poolSize: number };
  /** Role processes (default 2 bridges, 3 hg-sync, 2 tc-ingest). */
  processes?: { bridges: number; hgSync: number; tcIngest: number };
  /** The processes' DATABASE_POOL_SIZE (default 10, the variable's default). */
  databasePoolSize?: number;
  /** `all` (default): every fault; `redis`: only the topology's Redis faults. */
  faults?: "all" | "redis";
  /** Ledger messages held back until every fault has ended (default 10 %, at least 20). */
  tailMessages?: number;
}

/** Budget: what the processes may open; the peaks must stay within it. */
export interface ConnectionVerdict {
  peaks: ConnectionPeaks;
  /** Processes with a database pool (bridges open none) × DATABASE_POOL_SIZE. */
  clientBudget: number;
  /** Backends the processes may hold: the client budget directly, the bouncer's pool size through it. */
  processBackendBudget: number;
  /** The harness's own direct connections to the run's database (its Prisma pool of 5, one checking client). */
  harnessDirect: number;
  withinBudget: boolean;
}

/** Every role resumed by itself: what was published after the last fault ended became rows. */
export interface ResumeVerdict {
  /** Ledger messages and new upstream pushes published after the last fault. */
  messages: number;
  newPushes: number;
  lost: number;
  /** SyncRuns finished and Builds stored after the last fault (hg-sync and tc-ingest at work). */
  syncRuns: number;
  builds: number;
  ok: boolean;
}

export interface ChaosResult {
  id: string;
  messagesSent: number;
  byKind: Record<string, number>;
  faults: FaultRecord[];
  verdict: Verdict;
  topology: string;
  connections: ConnectionVerdict;
  resumed: ResumeVerdict;
  crashes: Array<{ label: string; code: number | null; signal: string | null }>;
  /** Exit codes of the final SIGTERM (all must be 0). */
  stopCodes: Array<{ label: string; codes: Array<number | null> }>;
  publishMs: number;
  /** From the last message published to everything drained. */
  drainMs: number;
  logDir: string;
  ok: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The harness's own direct connections to the run's database: createTestEnvironment's
 * Prisma pool (5, used to track the repositories) and one client at a time
 * (verifyLedger's, or the marks taken around the last fault).
 */
const HARNESS_DIRECT_CONNECTIONS = 6;
const PROCESS_APPLICATION = "pb-chaos-process";

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  const counts = options.processes ?? { bridges: 2, hgSync: 3, tcIngest: 2 };
  if (counts.bridges < 1 || counts.hgSync < 1 || counts.tcIngest < 1) throw new Error("a chaos run needs at least one process of each role");
  const poolSize = options.databasePoolSize ?? 10;
  let redis: ChaosRedis | undefined;
  let bouncer: PgBouncer | undefined;
  let standIn: QueueApiStandIn | undefined;
  let env: TestEnvironment | undefined;
  let publisher: Publisher | undefined;
  let group: ProcessGroup | undefined;
  let queues: Queues | undefined;
  let queuesRedis: ReturnType<typeof createRedis> | undefined;
  let hgServer: HgServer | undefined;
  let hgProxy: FlakyProxy | undefined;
  let watcher: ReturnType<typeof watchConnections> | undefined;
  try {
    redis = await startChaosRedis(options.redis ?? "single", {
      downMs: options.redisDownMs,
      failovers: options.failovers ?? 3,
      clusterKill: options.clusterKill ?? "owner",
    });
    standIn = await startQueueApiStandIn();
    env = await createTestEnvironment("chaos", {
      ...redis.env,
      TASKCLUSTER_ROOT_URL: standIn.rootUrl,
      TC_REQUEST_TIMEOUT: "2s",
      ALLOWED_HOSTS: "127.0.0.1,localhost",
      LOG_LEVEL: "info",
    });
    const config: Config = env.config;
    const logDir = options.logDir ?? path.join(ROOT, "test-artifacts", `chaos-${env.id}`);
    await mkdir(logDir, { recursive: true });
    report(`chaos ${env.id}: ${options.messages} messages at ${options.rate}/s, seed ${options.seed}; logs in ${logDir}`);
    report(`redis: ${redis.describe()}`);
    const database = new URL(config.database.url).pathname.slice(1);
    // The processes' connections are told apart from the harness's own by their application_name.
    const direct = new URL(config.database.url);
    direct.searchParams.set("application_name", PROCESS_APPLICATION);
    if (options.pgbouncer) {
      bouncer = await startPgBouncer({ poolSize: options.pgbouncer.poolSize });
      report(`database: processes through PgBouncer on port ${bouncer.port} (transaction mode, default_pool_size ${bouncer.poolSize}); migrations direct`);
    }
    const databaseUrl = bouncer ? bouncer.url(database, PROCESS_APPLICATION) : direct.toString();

    // Real upstream repositories (hg serve + pushlog) behind a proxy that can fail.
    const upstream = await startHgServer();
    hgServer = upstream;
    const proxy = await startFlakyProxy(upstream.url);
    hgProxy = proxy;
    const names = Array.from({ length: 6 }, (_, i) => `l10n-central/chaos${i}`);
    const pushes = options.pushesPerRepository ?? 20;
    const heads = new Map<string, string>();
    const setupStart = Date.now();
    await Promise.all(
      names.map(async (name) => {
        await upstream.createRepo(name);
        for (let pushId = 1; pushId <= pushes; pushId++) {
          const { nodes } = await upstream.push(name, [
            { message: `chaos push ${pushId} to ${name}`, files: { [`strings-${pushId}.ftl`]: `key-${pushId} = Value ${pushId}\n` } },
          ]);
          heads.set(`${proxy.url}/${name}|${pushId}`, nodes.at(-1)!);
        }
        await trackRepository(env!.db, config.clones.allowedHosts, `${proxy.url}/${name}`, { kind: "hg" });
      }),
    );
    report(`upstream: ${names.length} hg repositories with ${pushes} pushes each, tracked (${Date.now() - setupStart} ms)`);
    const ledger = buildLedger(config, {
      messages: options.messages,
      seed: options.seed,
      repositories: names.map((name) => `${proxy.url}/${name}`),
      pushesPerRepository: pushes,
      headFor: (repo, pushId) => heads.get(`${repo}|${pushId}`)!,
    });
    for (const task of ledger.tasks) standIn.addTask(task);
    publisher = await openPublisher();
    await declareExchanges(publisher, config);

    group = new ProcessGroup(
      { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env.env, DATABASE_URL: databaseUrl, DATABASE_POOL_SIZE: String(poolSize) },
      logDir,
    );
    watcher = watchConnections({ database, applicationName: PROCESS_APPLICATION, bouncer });
    const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    const bridges = range(counts.bridges).map((n) => group!.start(`bridge#${n}`, ["bridge"]));
    const tcWorkers = range(counts.tcIngest).map((n) => group!.start(`worker-tc-ingest#${n}`, ["worker", "tc-ingest", "--concurrency", "4"]));
    const hgWorkers = range(counts.hgSync).map((n) => group!.start(`worker-hg-sync#${n}`, ["worker", "hg-sync"]));
    const feedQueues = pulseFeeds(config).map((f) => f.queue);
    const startedUp = await waitFor(
      "the bridges to declare their queues",
      async () => {
        if (group!.crashes().length) return "crashed";
        const depths = await queueDepths();
        return feedQueues.every((q) => depths.has(q)) && "started";
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    if (startedUp === "crashed") {
      throw new Error(
        `a process exited at start: ${group
          .crashes()
          .map((c) => `${c.label} (code ${c.code})`)
          .join(", ")}; see its log in ${logDir}`,
      );
    }

    // ---- publish the ledger, injecting faults at fixed points of the stream
    const faults: FaultRecord[] = [];
    const pending: Array<Promise<void>> = [];
    let sent = 0;
    // `action` may call `begins()` when the fault really starts (a chained one waits for its predecessor).
    const inject = (name: string, action: (begins: () => void) => Promise<string> | string, blocking = false) => {
      let at = new Date();
      const done = Promise.resolve()
        .then(() =>
          action(() => {
            at = new Date();
          }),
        )
        .then(
          (detail) => {
            faults.push({ name, at, detail });
            report(`fault: ${name}: ${detail}`);
          },
          (error: Error) => {
            faults.push({ name, at, detail: `FAILED TO INJECT: ${error.message}` });
            report(`fault: ${name}: FAILED TO INJECT: ${error.message}`);
          },
        );
      if (blocking) return done;
      pending.push(done);
      return Promise.resolve();
    };
    // The Redis faults of the topology run one after the other (a failover
    // needs the previous one's killed master back as a replica), spread over the stream.
    const redisFaults = redis.faults(config.redis.prefix);
    let redisChain: Promise<void> = Promise.resolve();
    const redisSchedule = redisFaults.map((fault, i) => ({
      at: redisFaults.length === 1 ? 0.5 : 0.15 + (0.7 * i) / (redisFaults.length - 1),
      name: fault.name,
      run: () => {
        const previous = redisChain;
        let ended!: () => void;
        redisChain = new Promise<void>((resolve) => {
          ended = resolve;
        });
        return inject(fault.name, async (begins) => {
          try {
            await previous;
            begins();
            const published = sent;
            return `${await fault.run()} (${published} messages published when it began)`;
          } finally {
            ended();
          }
        });
      },
    }));
    const otherFaults: Array<{ at: number; name: string; run: () => Promise<void> }> = [
      { at: 0.1, name: "SIGKILL bridge", run: () => inject("SIGKILL bridge + restart", () => sigkillRestart(group!, bridges[0]!)) },
      {
        at: 0.2,
        name: "SIGKILL worker",
        run: () =>
          inject("SIGKILL worker + restart", async () =>
            [await sigkillRestart(group!, tcWorkers[0]!), ...(hgWorkers[0] ? [await sigkillRestart(group!, hgWorkers[0])] : [])].join("; "),
          ),
      },
      { at: 0.3, name: "close connections", run: () => inject("broker connections closed", () => closeBridgeConnections(config)) },
      { at: 0.4, name: "delete queue", run: () => inject("consumer queue deleted", () => deleteTaskclusterQueue(config, bridges.length), true) },
      { at: 0.65, name: "pg_terminate_backend", run: () => inject("pg_terminate_backend", () => terminateDatabaseConnections(config.database.url)) },
      {
        at: 0.75,
        name: "stand-in 500s",
        run: () =>
          inject("stand-ins answer 500s", () => {
            proxy.failFor(5_000);
            // Scaled to the run, so a short run's jobs are not pushed into long retry backoffs.
            return `${standInErrors(standIn!, Math.min(60, Math.ceil(options.messages / 5)))}; hg stand-in answers 500 for 5 s`;
          }),
      },
      {
        at: 0.85,
        name: "stand-in timeouts",
        run: () =>
          inject("stand-ins time out", async () => {
            proxy.delayMs = 4_000;
            const detail = await standInTimeouts(standIn!, 2_500, 6_000);
            proxy.delayMs = 0;
            return `${detail}; hg stand-in answered after 4000 ms for 6000 ms`;
          }),
      },
    ];
    const schedule = [...(options.faults === "redis" ? [] : otherFaults), ...redisSchedule].sort((a, b) => a.at - b.at);

    const started = Date.now();
    const tick = 100;
    const perTick = Math.max(1, Math.round((options.rate * tick) / 1000));
    const publishAll = async (entries: LedgerEntry[], total: number, runFaults: boolean) => {
      for (let index = 0; index < entries.length; index += perTick) {
        const tickStart = Date.now();
        const chunk = entries.slice(index, index + perTick);
        await publisher!.publishMany(
          chunk.map((e) => ({ exchange: e.exchange, routingKey: e.routingKey, body: e.body, options: e.headers ? { headers: e.headers } : {} })),
        );
        sent += chunk.length;
        while (runFaults && schedule.length && sent / total >= schedule[0]!.at) await schedule.shift()!.run();
        await sleep(Math.max(0, tick - (Date.now() - tickStart)));
      }
    };
    const tailSize = Math.min(ledger.entries.length, options.tailMessages ?? Math.max(20, Math.round(options.messages / 10)));
    const body = ledger.entries.slice(0, ledger.entries.length - tailSize);
    const tail = ledger.entries.slice(ledger.entries.length - tailSize);
    await publishAll(body, body.length, true);
    for (const fault of schedule) await fault.run(); // tiny runs: whatever did not fit
    report(`published ${sent} messages in ${Date.now() - started} ms; waiting for the faults to end before the last ${tail.length}`);
    await Promise.all(pending);

    // ---- after the last fault: the ledger's tail and one new push per repository must all become rows
    const marks = await databaseMarks(config.database.url);
    const newPushes: LedgerEntry[] = [];
    for (const [i, name] of names.entries()) {
      const repo = `${proxy.url}/${name}`;
      const { nodes } = await upstream.push(name, [
        { message: `chaos push ${pushes + 1} to ${name}, after the faults`, files: { [`strings-${pushes + 1}.ftl`]: `after = Faults\n` } },
      ]);
      newPushes.push(hgPushEntry(config, ledger.entries.length + i, repo, pushes + 1, nodes.at(-1)!));
      ledger.pushesExpected.set(repo, pushes + 1);
    }
    await publishAll([...tail, ...newPushes], tail.length + newPushes.length, false);
    ledger.entries.push(...newPushes);
    const publishMs = Date.now() - started;
    report(`published ${sent} messages in ${publishMs} ms (the last ${tail.length + newPushes.length} after the faults); waiting for the system to drain`);

    // ---- drain
    queuesRedis = createRedis(config.redis, "worker");
    queues = openQueues(queuesRedis, config.redis.prefix);
    const busyQueues = ["tc-ingest", "hg-sync"] as const;
    // Quiet means quiet three checks in a row: a job moving between states
    // (active → delayed while another worker holds the repository's lock)
    // can slip between two reads of one check.
    let quietChecks = 0;
    const quiet = async (): Promise<boolean> => {
      const depths = await queueDepths();
      if (!feedQueues.every((q) => depths.get(q)?.ready === 0 && depths.get(q)?.unacked === 0)) return false;
      for (const queue of busyQueues) {
        const counts = await queues![queue].getJobCounts("active", "waiting", "prioritized");
        if (Object.values(counts).some((n) => (n as number) > 0)) return false;
        // The reconcile scheduler always keeps its next run delayed.
        if ((await queues![queue].getDelayed(0, -1)).some((job) => job && !String(job.id).startsWith("repeat:"))) return false;
      }
      return true;
    };
    await waitFor(
      "the Pulse queues to be empty and every job to settle",
      async () => {
        quietChecks = (await quiet()) ? quietChecks + 1 : 0;
        return quietChecks >= 3;
      },
      { timeoutMs: options.drainTimeoutMs, intervalMs: 500 },
    ).catch((error: Error) => report(`drain: ${error.message}`));
    const drainMs = Date.now() - started - publishMs;

    const verdict = await verifyLedger({ ledger, queues, databaseUrl: config.database.url, clonesDir: env.clonesDir });
    const peaks = await watcher.stop();
    const after = await databaseMarks(config.database.url, marks, pushes + 1);
    const tailSeqs = new Set(tail.map((e) => e.seq));
    const tailLost = verdict.lost.filter((l) => tailSeqs.has(l.seq)).length + (newPushes.length - after.newPushesStored);
    const tailTasks = tail.filter((e) => e.kind === "tc-run" || e.kind === "tc-no-elmo").length;
    const resumed: ResumeVerdict = {
      messages: tail.length,
      newPushes: newPushes.length,
      lost: tailLost,
      syncRuns: after.syncRuns,
      builds: after.builds,
      ok: tailLost === 0 && after.syncRuns >= 1 && after.builds >= tailTasks,
    };
    const dbProcesses = counts.hgSync + counts.tcIngest;
    const clientBudget = dbProcesses * poolSize;
    const processBackendBudget = bouncer ? bouncer.poolSize : clientBudget;
    const connections: ConnectionVerdict = {
      peaks,
      clientBudget,
      processBackendBudget,
      harnessDirect: HARNESS_DIRECT_CONNECTIONS,
      withinBudget:
        peaks.samples > 0 &&
        peaks.processBackends <= processBackendBudget &&
        peaks.backends <= processBackendBudget + HARNESS_DIRECT_CONNECTIONS &&
        (peaks.bouncerClients ?? 0) <= clientBudget &&
        (peaks.bouncerServers ?? 0) <= processBackendBudget,
    };
    await group.stopAll();
    const stopCodes = group.processes.map((p) => ({ label: p.label, codes: p.stopCodes }));
    const crashes = group.crashes();
    const byKind: Record<string, number> = {};
    for (const entry of ledger.entries) byKind[entry.kind] = (byKind[entry.kind] ?? 0) + 1;
    const ok =
      verdict.lost.length === 0 &&
      verdict.duplicatedRows === 0 &&
      Object.keys(verdict.stuck).length === 0 &&
      verdict.overlappingSyncs === 0 &&
      verdict.clones.unhealthy.length === 0 &&
      crashes.length === 0 &&
      faults.every((f) => !f.detail.startsWith("FAILED")) &&
      stopCodes.every((s) => s.codes.every((c) => c === 0)) &&
      resumed.ok &&
      connections.withinBudget;
    const topology = `${redis.kind} Redis; ${counts.bridges} bridges, ${counts.hgSync} hg-sync, ${counts.tcIngest} tc-ingest; database ${bouncer ? `through PgBouncer (pool ${bouncer.poolSize})` : "direct"}, DATABASE_POOL_SIZE ${poolSize}`;
    return {
      id: env.id,
      messagesSent: sent,
      byKind,
      faults,
      verdict,
      topology,
      connections,
      resumed,
      crashes,
      stopCodes,
      publishMs,
      drainMs,
      logDir,
      ok,
    };
  } finally {
    await watcher?.stop();
    await group?.stopAll(5_000).catch(() => {});
    if (queues) await closeQueues(queues).catch(() => {});
    queuesRedis?.disconnect();
    await publisher?.close();
    await standIn?.close();
    await hgProxy?.close();
    await hgServer?.close();
    await env?.cleanup().catch(() => {});
    await bouncer?.close().catch(() => {});
    await redis?.close();
  }
}

/**
 * Finished SyncRuns and Builds: counted since `since` (ids only grow), or
 * the current highest ids to count from.
 */
async function databaseMarks(databaseUrl: string, since?: { syncRunId: number; buildId: number }, newPushId = 0) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ sync_run_id: number; build_id: number; sync_runs: number; builds: number; new_pushes: number }>(
      `SELECT (SELECT coalesce(max(id), 0) FROM "SyncRun")::int AS sync_run_id, (SELECT coalesce(max(id), 0) FROM "Build")::int AS build_id,
              (SELECT count(*) FROM "SyncRun" WHERE id > $1 AND "finishedAt" IS NOT NULL)::int AS sync_runs,
              (SELECT count(*) FROM "Build" WHERE id > $2)::int AS builds,
              (SELECT count(DISTINCT "repositoryId") FROM "Push" WHERE "pushId" = $3)::int AS new_pushes`,
      [since?.syncRunId ?? 0, since?.buildId ?? 0, newPushId],
    );
    const row = rows[0]!;
    return { syncRunId: row.sync_run_id, buildId: row.build_id, syncRuns: row.sync_runs, builds: row.builds, newPushesStored: row.new_pushes };
  } finally {
    await client.end();
  }
}

/** The verdict table the README shows, plus what explains a failure. */
export function formatResult(result: ChaosResult): string {
  const { verdict } = result;
  const rows: Array<[string, string]> = [
    [
      "messages sent",
      `${result.messagesSent} (${Object.entries(result.byKind)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ")})`,
    ],
    ["topology", result.topology],
    ["faults injected", `${result.faults.length}: ${result.faults.map((f) => f.name).join(", ")}`],
    ["lost", String(verdict.lost.length)],
    ["duplicated rows", String(verdict.duplicatedRows)],
    ["dead-lettered", String(verdict.deadLettered)],
    ["refused by worker (bad elmo.json)", String(verdict.refusedByWorker)],
    ["jobs stuck", Object.keys(verdict.stuck).length ? JSON.stringify(verdict.stuck) : "0"],
    ["sync runs / overlapping / abandoned", `${verdict.syncRuns} / ${verdict.overlappingSyncs} / ${verdict.abandonedSyncs}`],
    ["clones checked / unhealthy", `${verdict.clones.checked} / ${verdict.clones.unhealthy.length}`],
    ["jobs retried", String(verdict.retriedJobs)],
    ["process crashes", String(result.crashes.length)],
    [
      "resumed after the last fault",
      `${result.resumed.ok ? "yes" : "NO"}: ${result.resumed.messages} messages + ${result.resumed.newPushes} new pushes published, ${result.resumed.lost} lost; ${result.resumed.syncRuns} syncs, ${result.resumed.builds} builds since`,
    ],
    ["connections (peak / budget)", formatConnections(result.connections)],
    ["SIGTERM exits not 0", String(result.stopCodes.filter((s) => s.codes.some((c) => c !== 0)).length)],
    ["publish time", `${(result.publishMs / 1000).toFixed(1)} s`],
    ["time to drain", `${(result.drainMs / 1000).toFixed(1)} s`],
    ["result", result.ok ? "PASS" : "FAIL"],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v}`);
  for (const lost of verdict.lost.slice(0, 20)) lines.push(`  lost #${lost.seq} (${lost.kind}): ${lost.why}`);
  for (const stuck of verdict.stuckJobs) lines.push(`  stuck: ${stuck}`);
  for (const crash of result.crashes) lines.push(`  crash: ${crash.label} exited code=${crash.code} signal=${crash.signal}`);
  for (const fault of result.faults) lines.push(`  fault ${fault.at.toISOString()}: ${fault.name}: ${fault.detail}`);
  return lines.join("\n");
}

function formatConnections(c: ConnectionVerdict): string {
  const { peaks } = c;
  const bouncer =
    peaks.bouncerClients !== undefined
      ? `; PgBouncer clients ${peaks.bouncerClients} / ${c.clientBudget}, servers ${peaks.bouncerServers} / ${c.processBackendBudget}`
      : "";
  return (
    `${c.withinBudget ? "within" : "OVER"}: processes' PostgreSQL backends ${peaks.processBackends} / ${c.processBackendBudget}, ` +
    `all backends of the database ${peaks.backends} / ${c.processBackendBudget} + ${c.harnessDirect} (the harness's own)${bouncer} ` +
    `(client budget: pools × DATABASE_POOL_SIZE = ${c.clientBudget}; ${peaks.samples} samples)`
  );
}
