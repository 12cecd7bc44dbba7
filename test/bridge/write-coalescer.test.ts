/**
 * The write coalescer on a Redis of our own (its read counter is ours alone):
 * the commands of one event-loop turn reach Redis in one or two reads, every
 * one of them is answered, and with Redis gone it holds nothing (commands fail
 * at once, as the bridge's pause relies on).
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { coalesceWrites } from "../../src/bridge/write-coalescer.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { startPrivateRedis, type PrivateRedis } from "../support/private-redis.ts";
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

/** Issues COMMANDS sets in one turn, each after `before()`; returns how many socket reads Redis needed for them. */
async function readsFor(before: () => void, key: string): Promise<number> {
  const start = await readsProcessed();
  const replies = Array.from({ length: COMMANDS }, (_, i) => {
    before();
    return redis.set(`${key}:${i}`, "x".repeat(100));
  });
  expect(await Promise.all(replies)).toEqual(Array(COMMANDS).fill("OK"));
  // The INFO command of readsProcessed() is one read of its own.
  return (await readsProcessed()) - start - 1;
}

test("the commands of one turn leave together, and every one is answered", async () => {
  const coalesced = await readsFor(coalesceWrites(redis), "coalesced");
  expect(await redis.dbsize()).toBe(COMMANDS);
  // One write of 200 small commands (~25 KB) takes Redis a read or two (it
  // reads 16 KB at a time); sent one write each, they took it 3 to 160 reads
  // here, depending on how far Redis lagged behind.
  expect(coalesced).toBeLessThanOrEqual(4);
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
