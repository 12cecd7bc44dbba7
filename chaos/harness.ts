/**
 * One chaos run: real `node dist/cli.js` processes (bridge ×2,
 * worker tc-ingest ×2, worker hg-sync ×3 when that pool exists) on the local
 * broker and Postgres, a private Redis and the Queue API stand-in, all
 * isolated like a test (own queues, exchanges, BullMQ prefix, database,
 * clones folder). Publishes the ledger at a steady rate while injecting every
 * fault once, waits for the system to drain, then checks the ledger.
 *
 * Used by `npm run chaos` (chaos/run.ts) and, short, by test/chaos.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { closeQueues, openQueues, type Queues } from "../src/contract/queues.ts";
import { type Config, pulseFeeds } from "../src/core/config.ts";
import { createRedis } from "../src/core/redis.ts";
import { trackRepository } from "../src/jobs/hg-sync/tracking.ts";
import { type HgServer, startHgServer } from "../src/stand-ins/hg-server.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../src/stand-ins/queue-api-server.ts";
import { type PrivateRedis, startPrivateRedis } from "../test/support/private-redis.ts";
import { declareExchanges, openPublisher, type Publisher, queueDepths } from "../test/support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";
import {
  closeBridgeConnections,
  deleteTaskclusterQueue,
  type FaultRecord,
  redisOutage,
  sigkillRestart,
  standInErrors,
  standInTimeouts,
  terminateDatabaseConnections,
} from "./faults.ts";
import { type FlakyProxy, startFlakyProxy } from "./flaky-proxy.ts";
import { buildLedger } from "./ledger.ts";
import { ProcessGroup, ROOT } from "./processes.ts";
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
}

export interface ChaosResult {
  id: string;
  messagesSent: number;
  byKind: Record<string, number>;
  faults: FaultRecord[];
  verdict: Verdict;
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

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  const redisData = await mkdtemp(path.join(tmpdir(), "pb-chaos-redis-"));
  let redis: PrivateRedis | undefined;
  let standIn: QueueApiStandIn | undefined;
  let env: TestEnvironment | undefined;
  let publisher: Publisher | undefined;
  let group: ProcessGroup | undefined;
  let queues: Queues | undefined;
  let queuesRedis: ReturnType<typeof createRedis> | undefined;
  let hgServer: HgServer | undefined;
  let hgProxy: FlakyProxy | undefined;
  try {
    redis = await startPrivateRedis({ dataDir: redisData });
    standIn = await startQueueApiStandIn();
    env = await createTestEnvironment("chaos", {
      REDIS_URL: redis.url,
      TASKCLUSTER_ROOT_URL: standIn.rootUrl,
      TC_REQUEST_TIMEOUT: "2s",
      ALLOWED_HOSTS: "127.0.0.1,localhost",
      LOG_LEVEL: "info",
    });
    const config: Config = env.config;
    const logDir = options.logDir ?? path.join(ROOT, "test-artifacts", `chaos-${env.id}`);
    await mkdir(logDir, { recursive: true });
    report(`chaos ${env.id}: ${options.messages} messages at ${options.rate}/s, seed ${options.seed}; logs in ${logDir}`);

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

    group = new ProcessGroup({ PATH: process.env.PATH ?? "/usr/bin:/bin", ...env.env }, logDir);
    const bridges = [group.start("bridge#1", ["bridge"]), group.start("bridge#2", ["bridge"])];
    const tcWorkers = [
      group.start("worker-tc-ingest#1", ["worker", "tc-ingest", "--concurrency", "4"]),
      group.start("worker-tc-ingest#2", ["worker", "tc-ingest", "--concurrency", "4"]),
    ];
    const hgWorkers = [1, 2, 3].map((n) => group!.start(`worker-hg-sync#${n}`, ["worker", "hg-sync"]));
    const feedQueues = pulseFeeds(config).map((f) => f.queue);
    await waitFor(
      "both bridges to declare their queues",
      async () => {
        const depths = await queueDepths();
        return feedQueues.every((q) => depths.has(q));
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );

    // ---- publish the ledger, injecting faults at fixed points of the stream
    const faults: FaultRecord[] = [];
    const pending: Array<Promise<void>> = [];
    const inject = (name: string, action: () => Promise<string> | string, blocking = false) => {
      const at = new Date();
      const done = Promise.resolve()
        .then(action)
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
    const schedule: Array<{ at: number; name: string; run: () => Promise<void> }> = [
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
      { at: 0.5, name: "redis down", run: () => inject(`Redis down ${options.redisDownMs / 1000} s`, () => redisOutage(redis!, options.redisDownMs)) },
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

    const started = Date.now();
    const tick = 100;
    const perTick = Math.max(1, Math.round((options.rate * tick) / 1000));
    let sent = 0;
    for (let index = 0; index < ledger.entries.length; index += perTick) {
      const tickStart = Date.now();
      const chunk = ledger.entries.slice(index, index + perTick);
      await publisher.publishMany(
        chunk.map((e) => ({ exchange: e.exchange, routingKey: e.routingKey, body: e.body, options: e.headers ? { headers: e.headers } : {} })),
      );
      sent += chunk.length;
      while (schedule.length && sent / ledger.entries.length >= schedule[0]!.at) await schedule.shift()!.run();
      await sleep(Math.max(0, tick - (Date.now() - tickStart)));
    }
    for (const fault of schedule) await fault.run(); // tiny runs: whatever did not fit
    const publishMs = Date.now() - started;
    report(`published ${sent} messages in ${publishMs} ms; waiting for the faults to end and the system to drain`);
    await Promise.all(pending);

    // ---- drain
    queuesRedis = createRedis(redis.url, "worker");
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
      stopCodes.every((s) => s.codes.every((c) => c === 0));
    return { id: env.id, messagesSent: sent, byKind, faults, verdict, crashes, stopCodes, publishMs, drainMs, logDir, ok };
  } finally {
    await group?.stopAll(5_000).catch(() => {});
    if (queues) await closeQueues(queues).catch(() => {});
    queuesRedis?.disconnect();
    await publisher?.close();
    await standIn?.close();
    await hgProxy?.close();
    await hgServer?.close();
    await env?.cleanup().catch(() => {});
    await redis?.kill();
    await rm(redisData, { recursive: true, force: true });
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
