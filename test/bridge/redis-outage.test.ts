/**
 * Ack-after-enqueue: while Redis is unreachable the bridge acks nothing and
 * stops consuming, every message stays in RabbitMQ (ready or unacked), and
 * once Redis is back each one becomes its job exactly once.
 */

import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type BridgeHandle, startBridge } from "../../src/bridge/bridge.ts";
import { closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import type { Config } from "../../src/core/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { type PrivateRedis, startPrivateRedis } from "../support/private-redis.ts";
import { declareExchanges, openPublisher, type Publisher, queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
let config: Config;
let privateRedis: PrivateRedis;
let bridge: BridgeHandle;
let publisher: Publisher;

beforeAll(async () => {
  env = await createTestEnvironment("bridge-redis");
  privateRedis = await startPrivateRedis();
  config = env.configWith({ REDIS_URL: privateRedis.url, PULSE_PREFETCH: "40" });
  publisher = await openPublisher();
  await declareExchanges(publisher, config);
  bridge = await startBridge({ config, log: createLogger(config.logLevel, "bridge-test"), redisRetryMaxDelayMs: 300 });
  await waitFor("the bridge to consume every feed", () => bridge.status().feeds.every((f) => f.consuming));
});

afterAll(async () => {
  await bridge?.close();
  await publisher?.close();
  await privateRedis?.kill();
  await env?.cleanup();
});

async function jobsIn(queues: Queues, ids: string[]): Promise<number> {
  const found = await Promise.all(ids.map((id) => queues["tc-ingest"].getJob(id)));
  return found.filter(Boolean).length;
}

it("holds every message unacked while Redis is down and enqueues each once when it is back", async () => {
  const tcQueue = bridge.status().feeds.find((f) => f.source === "taskcluster")!.queue;
  const rootHost = new URL(config.taskcluster.rootUrl).host;

  // Redis answers: a first message goes through and is acked.
  const first = taskCompletedMessage(0, config);
  await publisher.publish(first.exchange, first.routingKey, first.body, first.options);
  await waitFor("the first message acked", async () => (await queueDepth(tcQueue))?.unacked === 0 && (await queueDepth(tcQueue))?.ready === 0);

  await privateRedis.kill();
  const messages = Array.from({ length: 150 }, (_, i) => taskCompletedMessage(i + 1, config));
  await publisher.publishMany(messages.map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));

  await waitFor("the bridge to pause", () => bridge.status().paused);
  await waitFor("the consumer to be cancelled", () => bridge.status().feeds.every((f) => !f.consuming));
  // Nothing was acked: every message is still in RabbitMQ, held (unacked) or waiting (ready).
  const depth = await queueDepth(tcQueue);
  expect(depth!.ready + depth!.unacked).toBe(messages.length);
  expect(depth!.unacked).toBeLessThanOrEqual(config.pulse.prefetch);
  expect(bridge.status().outstanding).toBe(depth!.unacked);

  await privateRedis.start();
  await waitFor("the bridge to resume", () => !bridge.status().paused && bridge.status().feeds.every((f) => f.consuming));
  await waitFor("every message acked", async () => {
    const d = await queueDepth(tcQueue);
    return d?.ready === 0 && d.unacked === 0;
  });

  const check = new Redis(privateRedis.url, { maxRetriesPerRequest: 1 });
  const queues = openQueues(check, config.redis.prefix);
  try {
    const ids = messages.map((m) => `tc|${rootHost}|${m.taskId}|0`);
    expect(await jobsIn(queues, ids)).toBe(messages.length);
    // The restarted Redis came back empty: exactly the 150 held messages, once each.
    const counts = await queues["tc-ingest"].getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(messages.length);
  } finally {
    await closeQueues(queues);
    check.disconnect();
  }
});
