/**
 * `npm run soak [-- --rate 500 --duration 600 --sample 5]` (env SOAK_RATE,
 * SOAK_DURATION seconds, SOAK_SAMPLE seconds; `--worker-rss-limit MB`,
 * default 200, env SOAK_WORKER_RSS_LIMIT; for experiments on the workers:
 * `--concurrency N` and `--worker-node-options=...`, env
 * SOAK_WORKER_NODE_OPTIONS, default TC_INGEST_NODE_OPTIONS below, `"A ;; B"`
 * for one setting per worker): a sustained stream through
 * the real processes (`node dist/cli.js bridge`, `worker tc-ingest` ×2;
 * `npm run build` first) on the local broker, Redis and Postgres, isolated
 * like a test, with the Queue API stand-in.
 *
 * The stream: 80% hg pushes to 10 repositories (pokes: they collapse into one
 * waiting hg-sync job per repository, so no worker is needed and Redis does
 * not grow), 18% task-completed runs with elmo.json (ingested by the
 * workers), 2% invalid messages (dead letters).
 *
 * Every sample: RSS, heap and event-loop delay of each process (a probe
 * loaded with NODE_OPTIONS=--import writes them), publish → job added
 * latency p50/p99 of the task messages (BullMQ "added" events), Pulse queue
 * depth (ready/unacked), tc-ingest backlog. At the end, for every role: RSS
 * and heap used at the start, middle and end, the median of each third, the
 * heap's floor per third (its least value: what survives major GCs, where a
 * leak shows) and where the memory of the last third sits (heap, external,
 * array buffers, the rest of RSS), and the CPU time used.
 *
 * Fails (exit 1) when any process's RSS keeps growing (median of the last
 * third vs the middle third; the first is warm-up), a worker's heap floor
 * keeps growing, a worker's last-third RSS median exceeds the RSS limit, the
 * bridge's p99 latency drifts up, or the Pulse backlog grows without bound.
 *
 * Looking inside a process (bench/soak-probe.mjs): `kill -USR2 <pid>` writes a
 * heap snapshot next to its probe file; SOAK_PROBE_ALLOCATION_PROFILE=<s>
 * makes the workers write an allocation profile after that many seconds.
 */

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { QueueEvents } from "bullmq";
import { seededRandom } from "../chaos/ledger.ts";
import { ProcessGroup, ROOT } from "../chaos/processes.ts";
import { closeQueues, openQueues } from "../src/contract/queues.ts";
import { pulseFeeds } from "../src/core/config.ts";
import { createRedis } from "../src/core/redis.ts";
import { startQueueApiStandIn } from "../src/stand-ins/queue-api-server.ts";
import { formatJson } from "../test/support/formats.ts";
import { declareExchanges, openPublisher, queueDepths, taskCompletedMessage } from "../test/support/pulse.ts";
import { createTestEnvironment } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";
import { compareLocalesArtifacts, realisticElmoJson, standInTask } from "../test/tc-ingest/fixtures.ts";

/**
 * The V8 settings the README recommends for `worker tc-ingest` (NODE_OPTIONS),
 * so the soak measures the workers as they should run: a young generation of
 * 2 × 8 MB instead of 2 × 32 MB, and an old generation capped at 1 GB, under
 * which V8 grows it by about 1.6× its live size between major GCs instead of
 * up to 4×. `--worker-node-options=` runs them on Node's defaults.
 */
const TC_INGEST_NODE_OPTIONS = "--max-old-space-size=1024 --max-semi-space-size=8";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: process.env.SOAK_RATE ?? "500" },
    duration: { type: "string", default: process.env.SOAK_DURATION ?? "600" },
    sample: { type: "string", default: process.env.SOAK_SAMPLE ?? "5" },
    "worker-rss-limit": { type: "string", default: process.env.SOAK_WORKER_RSS_LIMIT ?? "200" },
    concurrency: { type: "string" },
    "worker-node-options": { type: "string", default: process.env.SOAK_WORKER_NODE_OPTIONS ?? TC_INGEST_NODE_OPTIONS },
    "no-build": { type: "boolean", default: false },
  },
});
const rate = Number(values.rate);
const durationS = Number(values.duration);
const sampleS = Number(values.sample);
const workerRssLimitMb = Number(values["worker-rss-limit"]);
const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
for (const [name, value] of Object.entries({
  rate,
  duration: durationS,
  sample: sampleS,
  "worker-rss-limit": workerRssLimitMb,
  concurrency: concurrency ?? 1,
})) {
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
}

if (!values["no-build"]) {
  const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) process.exit(2);
}

/** One line of bench/soak-probe.mjs (bytes, ms). */
interface ProbeLine {
  t: number;
  pid: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  cpuUser: number;
  cpuSystem: number;
  eldP50: number;
  eldP99: number;
  eldMax: number;
}

/** One process at one sample, MB. */
interface RoleMemory {
  rss: number;
  heapUsed: number;
  /** The least heap used since the previous sample: after a major GC, close to the live set. */
  heapFloor: number;
}

interface Sample {
  t: number;
  sent: number;
  roles: Record<string, RoleMemory>;
  bridgeEldP99: number;
  latencyP50: number;
  latencyP99: number;
  pulseReady: number;
  pulseUnacked: number;
  tcBacklog: number;
}

const standIn = await startQueueApiStandIn();
const env = await createTestEnvironment("soak", { TASKCLUSTER_ROOT_URL: standIn.rootUrl, LOG_LEVEL: "warn" });
const logDir = path.join(ROOT, "test-artifacts", `soak-${env.id}`);
await mkdir(logDir, { recursive: true });
const probeFile = (label: string) => path.join(logDir, `${label}.probe.jsonl`);
const config = env.config;
const publisher = await openPublisher();
await declareExchanges(publisher, config);

const probe = `--import ${path.join(ROOT, "bench", "soak-probe.mjs")}`;
const baseEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env.env };
const WORKERS = ["worker-tc-ingest#1", "worker-tc-ingest#2"];
const ROLES = ["bridge", ...WORKERS];
const workerArgs = ["worker", "tc-ingest", ...(concurrency ? ["--concurrency", String(concurrency)] : [])];
// `A ;; B`: worker 1 runs with A, worker 2 with B (two settings under the same stream).
const workerNodeOptions = values["worker-node-options"].split(";;").map((options) => options.trim());
const groups = ROLES.map((label) => {
  const own = workerNodeOptions[Math.min(WORKERS.indexOf(label), workerNodeOptions.length - 1)];
  const nodeOptions = label === "bridge" ? probe : `${probe} ${own}`.trim();
  const allocationProfile: Record<string, string> =
    label !== "bridge" && process.env.SOAK_PROBE_ALLOCATION_PROFILE ? { SOAK_PROBE_ALLOCATION_PROFILE: process.env.SOAK_PROBE_ALLOCATION_PROFILE } : {};
  const group = new ProcessGroup({ ...baseEnv, NODE_OPTIONS: nodeOptions, SOAK_PROBE_FILE: probeFile(label), ...allocationProfile }, logDir);
  group.start(label, label === "bridge" ? ["bridge"] : workerArgs);
  return group;
});
const feedQueues = pulseFeeds(config).map((f) => f.queue);
await waitFor(
  "the bridge to declare its queues",
  async () => {
    const depths = await queueDepths();
    return feedQueues.every((q) => depths.has(q));
  },
  { timeoutMs: 60_000, intervalMs: 250 },
);

const redis = createRedis(config.redis.url, "worker");
const queues = openQueues(redis, config.redis.prefix);
const events = new QueueEvents("tc-ingest", { connection: { url: config.redis.url }, prefix: config.redis.prefix });
events.on("error", () => {});
await events.waitUntilReady();
const publishedAt = new Map<string, number>();
let windowLatencies: number[] = [];
events.on("added", ({ jobId }) => {
  const sent = publishedAt.get(jobId);
  if (sent === undefined) return;
  publishedAt.delete(jobId);
  windowLatencies.push(Date.now() - sent);
});

const hgEnvelope = formatJson<any>("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json");
const random = seededRandom(42);
const hex40 = () => Array.from({ length: 40 }, () => "0123456789abcdef"[Math.floor(random() * 16)]).join("");
const revisions = Array.from({ length: 20 }, hex40);
const host = new URL(standIn.rootUrl).host.replace(/[^A-Za-z0-9._/@-]/g, "_");
let pushId = 0;
let seq = 0;

function nextMessage() {
  seq++;
  const roll = random();
  if (roll < 0.8) {
    const body = structuredClone(hgEnvelope);
    const repo = `l10n-central/soak${seq % 10}`;
    body.payload.data.repo_url = `https://hg.mozilla.org/${repo}`;
    body.payload.data.heads = [hex40()];
    body.payload.data.pushlog_pushes = [{ ...body.payload.data.pushlog_pushes[0], pushid: ++pushId }];
    return { exchange: config.pulse.exchanges.hgpushes, routingKey: repo, body: JSON.stringify(body) };
  }
  if (roll < 0.98) {
    const message = taskCompletedMessage(seq, config);
    const elmo = realisticElmoJson({ geckoStrings: revisions[seq % 20]!, de: revisions[(seq + 7) % 20]!, fr: revisions[(seq + 13) % 20]! });
    standIn.addTask(standInTask({ taskId: message.taskId, taskGroupId: message.body.status.taskGroupId, artifacts: compareLocalesArtifacts(elmo) }));
    publishedAt.set(`tc|${host}|${message.taskId}|0`, Date.now());
    return { exchange: message.exchange, routingKey: message.routingKey, body: JSON.stringify(message.body), options: message.options };
  }
  return { exchange: config.pulse.exchanges.hgpushes, routingKey: "soak/invalid", body: `not json ${seq}` };
}

/** The probe's memory lines of a process written after `since` (heap snapshot notes left out). */
function probeLines(label: string, since = 0): ProbeLine[] {
  try {
    return readFileSync(probeFile(label), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ProbeLine)
      .filter((line) => line.t > since && typeof line.rss === "number");
  } catch {
    return [];
  }
}

const percentile = (values: number[], p: number) => {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const mb = (bytes: number) => bytes / 1024 / 1024;
const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");

const samples: Sample[] = [];
const started = Date.now();
let lastSample = started;
let sent = 0;
const tickMs = 50;
console.error(
  `soak ${env.id}: ${rate} msg/s for ${durationS} s, a sample every ${sampleS} s; worker NODE_OPTIONS ${values["worker-node-options"] || "(none)"}; logs in ${logDir}`,
);
try {
  while (Date.now() - started < durationS * 1000) {
    const tickStart = Date.now();
    const due = Math.floor(((tickStart - started) / 1000) * rate) - sent;
    if (due > 0) {
      const batch = Array.from({ length: due }, nextMessage);
      await publisher.publishMany(batch);
      sent += batch.length;
    }
    if (Date.now() - lastSample >= sampleS * 1000) {
      const since = lastSample;
      lastSample = Date.now();
      // Every queue of the shared broker is read; one that another test is deleting makes the read fail: skip that sample's depth.
      const depths = await queueDepths().catch(() => undefined);
      const lines = Object.fromEntries(ROLES.map((label) => [label, probeLines(label, since)]));
      const backlog = await queues["tc-ingest"].getJobCounts("waiting", "active", "delayed");
      const sample: Sample = {
        t: Math.round((lastSample - started) / 1000),
        sent,
        roles: Object.fromEntries(
          ROLES.map((label) => {
            const window = lines[label]!;
            const heapFloor = window.length ? Math.min(...window.map((line) => line.heapUsed)) : NaN;
            return [label, { rss: mb(window.at(-1)?.rss ?? NaN), heapUsed: mb(window.at(-1)?.heapUsed ?? NaN), heapFloor: mb(heapFloor) }];
          }),
        ),
        bridgeEldP99: Math.max(...lines.bridge!.map((b) => b.eldP99), 0),
        latencyP50: percentile(windowLatencies, 50),
        latencyP99: percentile(windowLatencies, 99),
        pulseReady: depths ? feedQueues.reduce((sum, q) => sum + (depths.get(q)?.ready ?? 0), 0) : NaN,
        pulseUnacked: depths ? feedQueues.reduce((sum, q) => sum + (depths.get(q)?.unacked ?? 0), 0) : NaN,
        tcBacklog: Object.values(backlog).reduce<number>((sum, n) => sum + (n as number), 0),
      };
      windowLatencies = [];
      samples.push(sample);
      console.error(formatRow(sample));
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, tickMs - (Date.now() - tickStart))));
  }
} catch (error) {
  // Leave no role running behind a failed soak.
  await Promise.all(groups.map((group) => group.stopAll(5_000)));
  throw error;
}

function formatRow(s: Sample): string {
  return [
    String(s.t).padStart(5),
    String(s.sent).padStart(8),
    f(s.roles.bridge!.rss).padStart(9),
    f(s.roles.bridge!.heapUsed).padStart(9),
    f(s.bridgeEldP99).padStart(8),
    ...WORKERS.flatMap((label) => [f(s.roles[label]!.rss).padStart(7), f(s.roles[label]!.heapUsed).padStart(6)]),
    f(s.latencyP50, 0).padStart(7),
    f(s.latencyP99, 0).padStart(7),
    String(s.pulseReady).padStart(7),
    String(s.pulseUnacked).padStart(8),
    String(s.tcBacklog).padStart(8),
  ].join(" |");
}

// ---- verdict: middle third against last third (the first third is warm-up)
const third = Math.max(1, Math.floor(samples.length / 3));
const thirds = [samples.slice(0, third), samples.slice(third, 2 * third), samples.slice(2 * third)] as const;
const [, middle, last] = thirds;
const median = (xs: number[]) => percentile(xs.filter(Number.isFinite), 50);
const least = (xs: number[]) => Math.min(...xs.filter(Number.isFinite));
const p99Middle = median(middle.map((s) => s.latencyP99));
const p99Last = median(last.map((s) => s.latencyP99));
const lastDepth = samples.findLast((s) => Number.isFinite(s.pulseReady));
const backlogEnd = (lastDepth?.pulseReady ?? 0) + (lastDepth?.pulseUnacked ?? 0);
const failures: string[] = [];

interface RoleSummary {
  label: string;
  /** RSS and heap used at the first, middle and last sample. */
  points: Array<RoleMemory | undefined>;
  rssThirds: number[];
  heapThirds: number[];
  heapFloorThirds: number[];
}
const summaries: RoleSummary[] = ROLES.map((label) => ({
  label,
  points: [samples[0], samples[Math.floor(samples.length / 2)], samples.at(-1)].map((s) => s?.roles[label]),
  rssThirds: thirds.map((part) => median(part.map((s) => s.roles[label]!.rss))),
  heapThirds: thirds.map((part) => median(part.map((s) => s.roles[label]!.heapUsed))),
  heapFloorThirds: thirds.map((part) => least(part.map((s) => s.roles[label]!.heapFloor))),
}));
for (const { label, rssThirds, heapFloorThirds } of summaries) {
  const [, rssMiddle, rssLast] = rssThirds as [number, number, number];
  if (rssLast > rssMiddle * 1.15 && rssLast - rssMiddle > 20) failures.push(`${label} RSS grew from ${f(rssMiddle)} to ${f(rssLast)} MB`);
  if (label === "bridge") continue;
  // The heap's floor is what survives garbage collection: growth there is a leak, whatever RSS does.
  const [, floorMiddle, floorLast] = heapFloorThirds as [number, number, number];
  if (floorLast > floorMiddle * 1.25 && floorLast - floorMiddle > 10) failures.push(`${label} heap floor grew from ${f(floorMiddle)} to ${f(floorLast)} MB`);
  if (rssLast > workerRssLimitMb) failures.push(`${label} RSS ${f(rssLast)} MB in the last third, above the limit of ${workerRssLimitMb} MB`);
}
if (p99Last > p99Middle * 2 + 50) failures.push(`p99 publish→added latency drifted from ${p99Middle} to ${p99Last} ms`);
if (backlogEnd > rate * 10) failures.push(`Pulse backlog of ${backlogEnd} messages at the end (> 10 s of stream)`);

console.log(`\n## soak ${env.id}: ${rate} msg/s for ${durationS} s (${sent} messages)\n`);
console.log(
  `    t |     sent | bridge RSS MB | heap MB | ELD p99 ms | ${WORKERS.map((w) => `${w} RSS | heap`).join(" | ")} | lat p50 ms | lat p99 ms | Pulse ready | unacked | tc backlog`,
);
for (const sample of samples) console.log(formatRow(sample));

const triple = (values: Array<number | undefined>) => values.map((v) => f(v ?? NaN)).join(" / ");
console.log(`\n### memory per role (MB; start / middle / end, and median of each third; first third is warm-up)\n`);
console.log("| role | RSS start / middle / end | RSS median by third | heap used start / middle / end | heap used median by third | heap floor by third |");
console.log("|---|---|---|---|---|---|");
for (const s of summaries) {
  console.log(
    `| ${s.label} | ${triple(s.points.map((p) => p?.rss))} | ${triple(s.rssThirds)} | ${triple(s.points.map((p) => p?.heapUsed))} | ${triple(s.heapThirds)} | ${triple(s.heapFloorThirds)} |`,
  );
}
// Where the RSS of the last third sits, from every probe line of that span.
const lastThirdFrom = started + (last[0]?.t ?? 0) * 1000 - sampleS * 1000;
console.log(`\n### last third, medians (MB), and CPU time over the whole run\n`);
console.log("| role | RSS | V8 heap total | heap used | external | of which array buffers | RSS outside the V8 heap and external | CPU user + system s |");
console.log("|---|---|---|---|---|---|---|---|");
for (const label of ROLES) {
  const all = probeLines(label);
  const lines = all.filter((line) => line.t >= lastThirdFrom);
  const m = (pick: (line: ProbeLine) => number) => f(mb(median(lines.map(pick))));
  const cpu = all.at(-1) && all[0] ? ((all.at(-1)!.cpuUser + all.at(-1)!.cpuSystem - all[0].cpuUser - all[0].cpuSystem) / 1000).toFixed(0) : "-";
  console.log(
    `| ${label} | ${m((l) => l.rss)} | ${m((l) => l.heapTotal)} | ${m((l) => l.heapUsed)} | ${m((l) => l.external)} | ${m((l) => l.arrayBuffers)} | ${m((l) => l.rss - l.heapTotal - l.external)} | ${cpu} |`,
  );
}
console.log(
  `\np99 latency median: ${p99Middle} → ${p99Last} ms; Pulse backlog at end ${backlogEnd}; worker RSS limit ${workerRssLimitMb} MB${concurrency ? `; worker --concurrency ${concurrency}` : ""}; worker NODE_OPTIONS ${values["worker-node-options"] || "(none)"}`,
);
console.log(
  failures.length
    ? `FAIL: ${failures.join("; ")}`
    : `PASS: every role's memory flat, workers under ${workerRssLimitMb} MB RSS, latency p99 steady, no growing backlog`,
);

await Promise.all(groups.map((group) => group.stopAll()));
await events.close();
await closeQueues(queues);
redis.disconnect();
await publisher.close();
await standIn.close();
await env.cleanup();
process.exit(failures.length ? 1 : 0);
