/**
 * `npm run soak [-- --rate 500 --duration 600 --sample 5]` (env SOAK_RATE,
 * SOAK_DURATION seconds, SOAK_SAMPLE seconds): a sustained stream through
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
 * depth (ready/unacked), tc-ingest backlog. Fails (exit 1) when the bridge's
 * memory keeps growing (last third vs middle third), its p99 latency drifts
 * up, or the Pulse backlog grows without bound.
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

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: process.env.SOAK_RATE ?? "500" },
    duration: { type: "string", default: process.env.SOAK_DURATION ?? "600" },
    sample: { type: "string", default: process.env.SOAK_SAMPLE ?? "5" },
    "no-build": { type: "boolean", default: false },
  },
});
const rate = Number(values.rate);
const durationS = Number(values.duration);
const sampleS = Number(values.sample);
for (const [name, value] of Object.entries({ rate, duration: durationS, sample: sampleS })) {
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
}

if (!values["no-build"]) {
  const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) process.exit(2);
}

interface ProbeLine {
  t: number;
  pid: number;
  rss: number;
  heapUsed: number;
  eldP50: number;
  eldP99: number;
  eldMax: number;
}

interface Sample {
  t: number;
  sent: number;
  bridgeRss: number;
  bridgeHeap: number;
  bridgeEldP99: number;
  workerRss: number;
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

const baseEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env.env, NODE_OPTIONS: `--import ${path.join(ROOT, "bench", "soak-probe.mjs")}` };
const groups = ["bridge", "worker-tc-ingest#1", "worker-tc-ingest#2"].map(
  (label) => new ProcessGroup({ ...baseEnv, SOAK_PROBE_FILE: probeFile(label) }, logDir),
);
groups[0]!.start("bridge", ["bridge"]);
groups[1]!.start("worker-tc-ingest#1", ["worker", "tc-ingest"]);
groups[2]!.start("worker-tc-ingest#2", ["worker", "tc-ingest"]);
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

function lastProbe(label: string, since: number): ProbeLine[] {
  try {
    return readFileSync(probeFile(label), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ProbeLine)
      .filter((line) => line.t > since);
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

const samples: Sample[] = [];
const started = Date.now();
let lastSample = started;
let sent = 0;
const tickMs = 50;
console.error(`soak ${env.id}: ${rate} msg/s for ${durationS} s, a sample every ${sampleS} s; logs in ${logDir}`);
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
    const depths = await queueDepths();
    const bridge = lastProbe("bridge", since);
    const workers = [...lastProbe("worker-tc-ingest#1", since).slice(-1), ...lastProbe("worker-tc-ingest#2", since).slice(-1)];
    const backlog = await queues["tc-ingest"].getJobCounts("waiting", "active", "delayed");
    const sample: Sample = {
      t: Math.round((lastSample - started) / 1000),
      sent,
      bridgeRss: mb(bridge.at(-1)?.rss ?? NaN),
      bridgeHeap: mb(bridge.at(-1)?.heapUsed ?? NaN),
      bridgeEldP99: Math.max(...bridge.map((b) => b.eldP99), 0),
      workerRss: workers.reduce((sum, w) => sum + mb(w.rss), 0),
      latencyP50: percentile(windowLatencies, 50),
      latencyP99: percentile(windowLatencies, 99),
      pulseReady: feedQueues.reduce((sum, q) => sum + (depths.get(q)?.ready ?? 0), 0),
      pulseUnacked: feedQueues.reduce((sum, q) => sum + (depths.get(q)?.unacked ?? 0), 0),
      tcBacklog: Object.values(backlog).reduce<number>((sum, n) => sum + (n as number), 0),
    };
    windowLatencies = [];
    samples.push(sample);
    console.error(formatRow(sample));
  }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, tickMs - (Date.now() - tickStart))));
}

function formatRow(s: Sample): string {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");
  return [
    String(s.t).padStart(5),
    String(s.sent).padStart(8),
    f(s.bridgeRss).padStart(9),
    f(s.bridgeHeap).padStart(9),
    f(s.bridgeEldP99).padStart(8),
    f(s.workerRss).padStart(10),
    f(s.latencyP50, 0).padStart(7),
    f(s.latencyP99, 0).padStart(7),
    String(s.pulseReady).padStart(7),
    String(s.pulseUnacked).padStart(8),
    String(s.tcBacklog).padStart(8),
  ].join(" |");
}

// ---- verdict: middle third against last third (the first third is warm-up)
const third = Math.max(1, Math.floor(samples.length / 3));
const middle = samples.slice(third, 2 * third);
const last = samples.slice(2 * third);
const median = (xs: number[]) => percentile(xs.filter(Number.isFinite), 50);
const rssMiddle = median(middle.map((s) => s.bridgeRss));
const rssLast = median(last.map((s) => s.bridgeRss));
const p99Middle = median(middle.map((s) => s.latencyP99));
const p99Last = median(last.map((s) => s.latencyP99));
const backlogEnd = (samples.at(-1)?.pulseReady ?? 0) + (samples.at(-1)?.pulseUnacked ?? 0);
const failures: string[] = [];
if (rssLast > rssMiddle * 1.15 && rssLast - rssMiddle > 20) failures.push(`bridge RSS grew from ${rssMiddle.toFixed(1)} to ${rssLast.toFixed(1)} MB`);
if (p99Last > p99Middle * 2 + 50) failures.push(`p99 publish→added latency drifted from ${p99Middle} to ${p99Last} ms`);
if (backlogEnd > rate * 10) failures.push(`Pulse backlog of ${backlogEnd} messages at the end (> 10 s of stream)`);

console.log(`\n## soak ${env.id}: ${rate} msg/s for ${durationS} s (${sent} messages)\n`);
console.log("    t |     sent | bridge RSS MB | heap MB | ELD p99 ms | workers RSS MB | lat p50 ms | lat p99 ms | Pulse ready | unacked | tc backlog");
for (const sample of samples) console.log(formatRow(sample));
console.log(
  `\nbridge RSS median: middle third ${rssMiddle.toFixed(1)} MB, last third ${rssLast.toFixed(1)} MB; p99 latency median: ${p99Middle} → ${p99Last} ms; Pulse backlog at end ${backlogEnd}`,
);
console.log(failures.length ? `FAIL: ${failures.join("; ")}` : "PASS: memory flat, latency p99 steady, no growing backlog");

await Promise.all(groups.map((group) => group.stopAll()));
await events.close();
await closeQueues(queues);
redis.disconnect();
await publisher.close();
await standIn.close();
await env.cleanup();
process.exit(failures.length ? 1 : 0);
