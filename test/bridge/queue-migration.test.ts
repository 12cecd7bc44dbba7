/**
 * Upgrading from the classic queues of earlier versions: they cannot be
 * re-declared as quorum queues (PRECONDITION_FAILED), so the quorum queues
 * have new names (`.../v2/<feed>`). A bridge that finds the old queue of a
 * feed, declared as the old code did and holding messages, binds the new
 * queue, unbinds the old one, drains it through the normal path and deletes
 * it once empty: every message is a job exactly once, including one whose
 * headers amqplib cannot decode on a normal stack (the old queue has no
 * delivery limit, so the drain must not choke on it).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import amqp from "amqplib";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type PulseFeed, pulseFeeds } from "../../src/core/config.ts";
import { feedBindings } from "../../src/pulse/feed-topology.ts";
import { publishDeepHeaders } from "../support/deep-headers.ts";
import { declareExchanges, openPublisher, type Publisher, queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { type RunningBridge, startRunningBridge } from "../support/running-bridge.ts";
import { createTestEnvironment, SERVICES, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

const run = promisify(execFile);
/** The header in which the reader notes what it dropped (src/pulse/shallow-headers.ts). */
const DROPPED_HEADERS_NOTE = "x-pulse-bridge-dropped-headers";

let env: TestEnvironment;
let publisher: Publisher;
let running: RunningBridge | undefined;
let feed: PulseFeed;

beforeAll(async () => {
  env = await createTestEnvironment("bridge-migration", { PULSE_PREFETCH: "50" });
  publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
  feed = pulseFeeds(env.config).find((f) => f.kind === "taskcluster")!;
});

afterAll(async () => {
  await running?.close();
  await publisher?.close();
  await env?.cleanup();
});

async function queueInfo(name: string): Promise<{ type: string; consumers: number } | undefined> {
  const { stdout } = await run("rabbitmqctl", ["list_queues", "name", "type", "consumers", "--formatter", "json", "-q"]);
  return (JSON.parse(stdout) as Array<{ name: string; type: string; consumers: number }>).find((q) => q.name === name);
}

it("drains the old classic queue into jobs, each once, deletes it, and consumes the new quorum queue", async () => {
  const config = env.config;
  // The old queue, declared and bound as the old code did.
  const connection = await amqp.connect(SERVICES.amqp);
  const channel = await connection.createChannel();
  await channel.assertQueue(feed.legacyQueue, { durable: true, arguments: { "x-max-length": config.pulse.maxLength } });
  for (const binding of feedBindings(feed, config)) await channel.bindQueue(feed.legacyQueue, binding.exchange, binding.pattern);
  await connection.close();

  const N = 400;
  const old = Array.from({ length: N }, (_, i) => taskCompletedMessage(i, config));
  const toPublish = (list: typeof old) => list.map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options }));
  await publisher.publishMany(toPublish(old.slice(0, N / 2)));
  const deep = taskCompletedMessage(N, config);
  await publishDeepHeaders(deep.exchange, deep.routingKey, deep.body, deep.options);
  await publisher.publishMany(toPublish(old.slice(N / 2)));
  expect((await queueDepth(feed.legacyQueue))?.ready).toBe(N + 1);

  running = await startRunningBridge(config, { reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 1_000 });
  const { queues } = running;
  const host = new URL(config.taskcluster.rootUrl).host;
  const ids = [...old, deep].map((m) => `tc|${host}|${m.taskId}|0`);
  const total = async () => Object.values(await queues["tc-ingest"].getJobCounts()).reduce((a, b) => a + b, 0);

  await waitFor("the old queue deleted", async () => (await queueDepth(feed.legacyQueue)) === undefined, { timeoutMs: 60_000 });
  await waitFor(`${ids.length} jobs`, async () => (await total()) >= ids.length);
  expect((await Promise.all(ids.map((id) => queues["tc-ingest"].getJob(id)))).every(Boolean)).toBe(true);
  const deepJob = await queues["tc-ingest"].getJob(ids.at(-1)!);
  expect(deepJob?.data.message.headers[DROPPED_HEADERS_NOTE]).toContain("deep (nested deeper than 16 levels)");

  // The new queue is a quorum queue, consumed; what is published now reaches it.
  // (rabbitmqctl's consumer count of a quorum queue is a statistic, updated every few seconds)
  await waitFor("the new quorum queue consumed", async () => {
    const info = await queueInfo(feed.queue);
    return info?.type === "quorum" && info.consumers === 1;
  });
  expect(running.bridge.status().feeds.every((f) => !f.migrating)).toBe(true);
  const later = Array.from({ length: 5 }, (_, i) => taskCompletedMessage(N + 1 + i, config));
  await publisher.publishMany(toPublish(later));
  await waitFor("the later messages as jobs", async () => (await total()) === ids.length + later.length);
  await waitFor("the new queue empty and acked", async () => {
    const depth = await queueDepth(feed.queue);
    return depth?.ready === 0 && depth.unacked === 0;
  });
  // Exactly once each: nothing was dead-lettered, nothing duplicated, nothing poisoned.
  expect(await total()).toBe(ids.length + later.length);
  expect(Object.values(await queues["dead-letter"].getJobCounts()).reduce((a, b) => a + b, 0)).toBe(0);
  expect((await queueDepth(feed.poisonQueue))?.ready).toBe(0);
});
