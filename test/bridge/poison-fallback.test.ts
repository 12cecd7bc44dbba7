/**
 * The bridge's own fallback for a broker that does not count a delivery
 * returned by a dying connection (RabbitMQ 4.3 counts only failed deliveries
 * towards the delivery limit): simulated here with a delivery limit the
 * broker will not reach (1000). After a few consecutive decoding failures
 * with nothing settled, the bridge moves the culprit to the poison queue
 * itself, from a big-stack reader, with the dead-letter headers
 * `replay --poison` reads; the process never sees an uncaught exception and
 * the messages behind the culprit flow again.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type PulseFeed, pulseFeeds } from "../../src/core/config.ts";
import { replayPoison } from "../../src/replay/poison-queue.ts";
import { publishDeepHeaders } from "../support/deep-headers.ts";
import { queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { type RunningBridge, startRunningBridge } from "../support/running-bridge.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
let running: RunningBridge;
let feed: PulseFeed;
const uncaught: unknown[] = [];
const recordUncaught = (error: unknown) => uncaught.push(error);

beforeAll(async () => {
  process.on("uncaughtException", recordUncaught);
  env = await createTestEnvironment("bridge-poison-fallback", { PULSE_DELIVERY_LIMIT: "1000", PULSE_PREFETCH: "50" });
  feed = pulseFeeds(env.config).find((f) => f.kind === "taskcluster")!;
  running = await startRunningBridge(env.config, { reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 500, moveUndecodableAfter: 4 });
});

afterAll(async () => {
  process.off("uncaughtException", recordUncaught);
  await running?.close();
  await env?.cleanup();
});

it("moves an undecodable message to the poison queue itself when the broker does not dead-letter it", async () => {
  const config = env.config;
  const { publisher, queues } = running;
  const host = new URL(config.taskcluster.rootUrl).host;
  const innocent = Array.from({ length: 60 }, (_, i) => taskCompletedMessage(i, config));
  const publish = (from: number, to: number) =>
    publisher.publishMany(innocent.slice(from, to).map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));
  const poison = taskCompletedMessage(1000, config);

  await publish(0, 10);
  await publishDeepHeaders(poison.exchange, poison.routingKey, poison.body, poison.options);
  await publish(10, 60);

  const ids = innocent.map((m) => `tc|${host}|${m.taskId}|0`);
  await waitFor("every ordinary message as a job", async () => (await Promise.all(ids.map((id) => queues["tc-ingest"].getJob(id)))).every(Boolean), {
    timeoutMs: 60_000,
  });
  await waitFor("the culprit, alone, in the poison queue", async () => (await queueDepth(feed.poisonQueue))?.ready === 1);
  await waitFor("the feed's queue empty and acked", async () => {
    const depth = await queueDepth(feed.queue);
    return depth?.ready === 0 && depth.unacked === 0;
  });
  expect(uncaught).toEqual([]);
  expect(running.bridge.status().feeds.find((f) => f.source === "taskcluster")).toMatchObject({ connected: true, consuming: true });

  const summary = await replayPoison(config, queues);
  expect(summary.outcomes).toEqual([
    expect.objectContaining({ from: feed.queue, reason: "pulse-bridge: undecodable", outcome: "enqueued", detail: `tc-ingest tc|${host}|${poison.taskId}|0` }),
  ]);
  const job = await queues["tc-ingest"].getJob(`tc|${host}|${poison.taskId}|0`);
  expect(job?.data.message).toMatchObject({ exchange: poison.exchange, routingKey: poison.routingKey });
  expect((await queueDepth(feed.poisonQueue))?.ready).toBe(0);
  expect(Object.values(await queues["tc-ingest"].getJobCounts()).reduce((a, b) => a + b, 0)).toBe(ids.length + 1);
});
