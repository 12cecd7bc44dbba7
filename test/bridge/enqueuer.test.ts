/**
 * The Enqueuer's failure classes on a real Redis: a job BullMQ refuses for
 * what it is becomes a dead letter (its message can then be acked instead of
 * blocking its feed); an outage holds every job and reports unhealthy until
 * Redis is back.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { Enqueuer } from "../../src/bridge/enqueuer.ts";
import type { AnyJobRequest } from "../../src/contract/contracts.ts";
import { tcIngestJobRequest } from "../../src/contract/job-requests.ts";
import { closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { loadConfig, pulseFeeds } from "../../src/core/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { routeMessage } from "../../src/routing/route-message.ts";
import { type PrivateRedis, startPrivateRedis } from "../support/private-redis.ts";
import { taskCompletedMessage } from "../support/pulse.ts";
import { waitFor } from "../support/wait-for.ts";

const prefix = `t-enqueuer-${process.pid}`;
const config = loadConfig({});
const feed = pulseFeeds(config).find((f) => f.kind === "taskcluster")!;
let privateRedis: PrivateRedis;
let redis: Redis;
let queues: Queues;
const log = createLogger("silent", "enqueuer-test");

beforeAll(async () => {
  privateRedis = await startPrivateRedis();
  redis = createRedis(privateRedis.url, "producer");
  queues = openQueues(redis, prefix);
});

afterAll(async () => {
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  // Its keys go with it: the private Redis keeps nothing.
  await privateRedis?.kill();
});

function tcJob(n: number): AnyJobRequest {
  const m = taskCompletedMessage(n, config);
  const decision = routeMessage(
    { feed, exchange: m.exchange, routingKey: m.routingKey, content: Buffer.from(JSON.stringify(m.body)), headers: {}, redelivered: false },
    config,
  );
  if (decision.action !== "enqueue") throw new Error("expected a job");
  return decision.job;
}

it("a job BullMQ refuses is replaced by a dead letter naming the reason", async () => {
  const enqueuer = new Enqueuer({ queues, log, isConnected: () => redis.status === "ready", onHealthChange: () => {} });
  const good = tcJob(1);
  if (good.queue !== "tc-ingest") throw new Error("expected tc-ingest");
  // An integer-looking id is refused by BullMQ itself, whatever Redis does.
  const refused = tcIngestJobRequest(good.data);
  refused.opts = { ...refused.opts, jobId: "12345" };
  const added: AnyJobRequest[] = [];
  enqueuer.add(refused, (job) => added.push(job));
  await waitFor("the refused job settled", () => added.length === 1);
  expect(added[0]!.queue).toBe("dead-letter");
  const letter = await queues["dead-letter"].getJob(added[0]!.opts.jobId);
  expect(letter!.data.reason).toMatch(/^BullMQ refused the tc-ingest job 12345: Custom Id cannot be integers/);
  expect(letter!.data.message.body).toBe(good.data.message.body);
  expect(enqueuer.isHealthy).toBe(true);
});

it("an outage holds every job, reports unhealthy, and adds each once Redis is back", async () => {
  const health: boolean[] = [];
  const enqueuer = new Enqueuer({ queues, log, isConnected: () => redis.status === "ready", onHealthChange: (h) => health.push(h), retryMaxDelayMs: 200 });
  await privateRedis.kill();
  await waitFor("the client to notice", () => redis.status !== "ready");
  const jobs = Array.from({ length: 20 }, (_, i) => tcJob(100 + i));
  const added: AnyJobRequest[] = [];
  for (const job of jobs) enqueuer.add(job, (a) => added.push(a));
  await waitFor("unhealthy", () => !enqueuer.isHealthy);
  expect(health).toEqual([false]);
  expect(added).toEqual([]);
  expect(enqueuer.outstanding).toBe(jobs.length);

  await privateRedis.start();
  await waitFor("healthy again", () => enqueuer.isHealthy);
  expect(health).toEqual([false, true]);
  expect(added.map((a) => a.opts.jobId).sort()).toEqual(jobs.map((j) => j.opts.jobId).sort());
  expect(added.every((a) => a.queue === "tc-ingest")).toBe(true);
  for (const job of jobs) expect(await queues["tc-ingest"].getJob(job.opts.jobId)).toBeDefined();
});
