/**
 * The bridge survives what the broker does to it: a forced connection close
 * (operator, broker restart, network) in the middle of a stream of messages,
 * and the deletion of its queue (Pulse deletes queues that grow past their
 * limit). It reconnects, declares its queue and bindings again and goes on
 * consuming; nothing is lost and nothing is enqueued twice.
 */
import { beforeAll, expect, it } from "vitest";
import { brokerReconnects } from "../../src/core/metrics.ts";
import { closeConnections, deleteQueue, queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { useRunningBridge } from "../support/running-bridge.ts";
import { waitFor } from "../support/wait-for.ts";

let tcQueue: string;
let rootHost: string;
const t = useRunningBridge("bridge-broker", { PULSE_PREFETCH: "50" }, { reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 1_000 });

beforeAll(() => {
  tcQueue = t.bridge.status().feeds.find((f) => f.source === "taskcluster")!.queue;
  rootHost = new URL(t.config.taskcluster.rootUrl).host;
});

async function reconnects(): Promise<number> {
  return (await brokerReconnects.get()).values.find((v) => v.labels.source === "taskcluster")?.value ?? 0;
}

async function publishRange(from: number, to: number) {
  const messages = Array.from({ length: to - from }, (_, i) => taskCompletedMessage(from + i, t.config));
  await t.publisher.publishMany(messages.map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));
  return messages.map((m) => `tc|${rootHost}|${m.taskId}|0`);
}

async function everyJob(ids: string[]): Promise<void> {
  await waitFor(`${ids.length} jobs`, async () => (await Promise.all(ids.map((id) => t.queues["tc-ingest"].getJob(id)))).every(Boolean));
}

async function total(): Promise<number> {
  return Object.values(await t.queues["tc-ingest"].getJobCounts()).reduce((a, b) => a + b, 0);
}

async function drained(): Promise<void> {
  await waitFor("the queue to be empty and acked", async () => {
    const depth = await queueDepth(tcQueue);
    return depth?.ready === 0 && depth.unacked === 0;
  });
}

it("a forced connection close in the middle of a stream: reconnects, loses nothing, enqueues each once", async () => {
  const before = await reconnects();
  const publishing = publishRange(0, 2000);
  // Closed while deliveries are in flight: their acks must not go to the dead channel.
  await waitFor("the stream to start", async () => (await total()) > 0, { intervalMs: 5 });
  expect(await closeConnections(`${tcQueue} (`, "closed by the broker-failures test")).toBe(1);
  const ids = await publishing;
  await waitFor("a reconnection", async () => (await reconnects()) > before);
  ids.push(...(await publishRange(2000, 2050)));
  await waitFor("2050 jobs", async () => (await total()) >= ids.length);
  await drained();
  expect(await total()).toBe(ids.length);
  await everyJob(ids);
  expect(t.bridge.status()).toMatchObject({ connected: true, paused: false });
});

it("the queue deleted under it: declares it again with its bindings and goes on consuming", async () => {
  const before = await reconnects();
  await deleteQueue(tcQueue);
  await waitFor("a reconnection", async () => (await reconnects()) > before);
  await waitFor("the queue declared again", async () => (await queueDepth(tcQueue)) !== undefined);
  await waitFor("consuming again", () => t.bridge.status().feeds.every((f) => f.consuming));
  const ids = await publishRange(5000, 5020);
  await everyJob(ids);
  await drained();
});
