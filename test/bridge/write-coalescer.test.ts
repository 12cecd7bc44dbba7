/**
 * The write coalescer on a Redis of our own (its read counter is ours alone):
 * the commands of one event-loop turn leave in one socket write and reach
 * Redis in fewer reads than the same commands sent without it, every one of
 * them is answered, and with Redis gone it holds nothing (commands fail at
 * once, as the bridge's pause relies on).
 */
import type { Socket } from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { coalesceWrites } from "../../src/bridge/write-coalescer.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { type PrivateRedis, startPrivateRedis } from "../support/private-redis.ts";
import { waitFor } from "../support/wait-for.ts";

const COMMANDS = 200;
let server: PrivateRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startPrivateRedis();
  redis = createRedis(server.url, "producer");
  await waitFor("the producer connection", async () => redis.status === "ready");
});

afterAll(async () => {
  redis.disconnect();
  await server.kill();
});

async function readsProcessed(): Promise<number> {
  const info = await redis.info("stats");
  return Number(/total_reads_processed:(\d+)/.exec(info)![1]);
}

/** Counts the writes the socket hands to the system (one `_write` or `_writev` each) until the returned function is called. */
function countSocketWrites(socket: Socket): () => number {
  const internals = socket as unknown as { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
  let writes = 0;
  const { _write: write, _writev: writev } = internals;
  internals._write = function (this: Socket, ...args: unknown[]) {
    writes++;
    return write.apply(this, args);
  };
  internals._writev = function (this: Socket, ...args: unknown[]) {
    writes++;
    return writev.apply(this, args);
  };
  return () => {
    internals._write = write;
    internals._writev = writev;
    return writes;
  };
}

/**
 * Issues COMMANDS sets in one turn, each after `before()`; returns how many
 * socket writes the client made for them and how many socket reads Redis needed.
 */
async function sendOneTurn(before: () => void, key: string): Promise<{ writes: number; reads: number }> {
  const start = await readsProcessed();
  const stopCounting = countSocketWrites(redis.stream as Socket);
  const replies = Array.from({ length: COMMANDS }, (_, i) => {
    before();
    return redis.set(`${key}:${i}`, "x".repeat(100));
  });
  expect(await Promise.all(replies)).toEqual(Array(COMMANDS).fill("OK"));
  const writes = stopCounting();
  // The INFO command of readsProcessed() is one read of its own.
  return { writes, reads: (await readsProcessed()) - start - 1 };
}

test("the commands of one turn leave together, and every one is answered", async () => {
  // The same commands on the same connection, without and with the coalescer.
  const direct = await sendOneTurn(() => {}, "direct");
  const coalesced = await sendOneTurn(coalesceWrites(redis), "coalesced");
  expect(await redis.dbsize()).toBe(2 * COMMANDS);
  // Sent directly, each command is a write of its own (ioredis writes as it
  // sends); held together, the turn's commands leave in one.
  expect(direct.writes).toBe(COMMANDS);
  expect(coalesced.writes).toBe(1);
  // One write of 200 small commands (~25 KB) takes Redis a read or two (it
  // reads 16 KB at a time); the direct writes took it 3 to 160 reads here,
  // depending on how far Redis lagged behind, never fewer than the coalesced one.
  expect(coalesced.reads).toBeLessThanOrEqual(Math.min(4, direct.reads));
});

test("with Redis gone, commands fail at once instead of waiting in a corked socket", async () => {
  const coalesce = coalesceWrites(redis);
  await server.kill();
  await waitFor("the producer to notice", async () => redis.status !== "ready");
  coalesce();
  await expect(redis.set("after-kill", "x")).rejects.toThrow();
  await server.start();
  await waitFor("the producer to reconnect", async () => redis.status === "ready");
  coalesce();
  await expect(redis.set("after-restart", "x")).resolves.toBe("OK");
});
