/**
 * `pulse-bridge start` as a real process: messages published to the broker
 * become tc-ingest jobs carried out in the same process; SIGTERM in the
 * middle of the work exits 0 (within the 30 s contract) with no active job
 * left behind, and a second start finishes every job: nothing is lost.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulseFeeds } from "../../src/core/config.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { declareExchanges, openPublisher, type Publisher, queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, standInTask } from "../tc-ingest/fixtures.ts";

const MESSAGES = 24;
const EXIT_DEADLINE_MS = 30_000;

let env: TestEnvironment;
let standIn: QueueApiStandIn;
let publisher: Publisher;
let redis: Redis;
let queue: Queue;
let child: ChildProcess | undefined;
let runs = 0;

beforeAll(async () => {
  // Slow enough that SIGTERM lands while jobs are in flight.
  standIn = await startQueueApiStandIn({ latencyMs: 100 });
  env = await createTestEnvironment("start", { TASKCLUSTER_ROOT_URL: standIn.rootUrl, DASHBOARD_PORT: "0", LOG_LEVEL: "info", TC_INGEST_CONCURRENCY: "4" });
  publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
  redis = createRedis(env.config.redis.url, "worker");
  queue = new Queue("tc-ingest", { connection: redis, prefix: env.config.redis.prefix });
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await queue?.close();
  redis?.disconnect();
  await publisher?.close();
  await standIn?.close();
  await env?.cleanup();
});

function startProcess(): { process: ChildProcess; started: Promise<void>; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "start"], {
    env: { ...process.env, ...env.env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  // The process's JSON logs, kept for inspection.
  mkdirSync("test-artifacts", { recursive: true });
  proc.stderr!.pipe(createWriteStream(`test-artifacts/start-${++runs}.log`));
  const started = new Promise<void>((resolve, reject) => {
    proc.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      // Bound and consuming: a message published before would find no queue.
      if (stderr.includes('"msg":"all roles started"') && /"feed":"taskcluster".*"msg":"consuming from Pulse"/.test(stderr)) resolve();
    });
    proc.once("exit", (code) => reject(new Error(`start exited early with ${code}: ${stderr.slice(-2000)}`)));
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  child = proc;
  return { process: proc, started, exited };
}

/** Resolves with the exit code, or rejects if the process outlives the contract's deadline. */
function exitWithin(exited: Promise<number | null>, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running ${ms} ms after SIGTERM`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe("pulse-bridge start", () => {
  it("runs every role, stops cleanly on SIGTERM mid-work, and loses no job", async () => {
    const first = startProcess();
    await first.started;

    const messages = Array.from({ length: MESSAGES }, (_, n) => taskCompletedMessage(n + 1, env.config));
    for (const message of messages) {
      standIn.addTask(
        standInTask({ taskId: message.taskId, artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) }),
      );
    }
    await publisher.publishMany(messages.map(({ exchange, routingKey, body, options }) => ({ exchange, routingKey, body, options })));
    await waitFor("some jobs completed", async () => (await queue.getCompletedCount()) >= 2);

    first.process.kill("SIGTERM");
    expect(await exitWithin(first.exited, EXIT_DEADLINE_MS)).toBe(0);
    const counts = (await queue.getJobCounts("active", "completed", "waiting", "delayed", "failed")) as Record<
      "active" | "completed" | "waiting" | "delayed" | "failed",
      number
    >;
    expect(counts.active).toBe(0);
    expect(counts.failed).toBe(0);
    // Every message is a job by now or still waits, unacked or ready, in our Pulse queue.
    const feedQueue = pulseFeeds(env.config).find((feed) => feed.kind === "taskcluster")!.queue;
    const depth = (await queueDepth(feedQueue)) ?? { ready: 0, unacked: 0 };
    expect(counts.completed + counts.waiting + counts.delayed + depth.ready + depth.unacked).toBeGreaterThanOrEqual(MESSAGES);
    expect(counts.completed).toBeLessThan(MESSAGES);

    const second = startProcess();
    await second.started;
    await waitFor("every job completed", async () => (await queue.getCompletedCount()) === MESSAGES, { timeoutMs: 40_000 });
    expect(await env.db.build.count()).toBe(MESSAGES);
    const records = await env.db.jobRecord.count({ where: { queue: "tc-ingest", state: "completed" } });
    expect(records).toBe(MESSAGES);
    second.process.kill("SIGTERM");
    expect(await exitWithin(second.exited, EXIT_DEADLINE_MS)).toBe(0);
  });
});
