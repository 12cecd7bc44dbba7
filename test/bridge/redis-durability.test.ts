/**
 * REDIS_DURABILITY against real redis-server processes of the test's own:
 * the bridge refuses a Redis that cannot give the guarantee asked for and
 * starts on one that can; with replicas:1, a replica stopped mid-stream
 * holds every ack until it is back, and then each message becomes its job
 * once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BridgeHandle, startBridge } from "../../src/bridge/bridge.ts";
import { closeQueues, openQueues } from "../../src/contract/queues.ts";
import { type Config, pulseFeeds } from "../../src/core/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { redisDurabilityOk } from "../../src/core/metrics.ts";
import { durabilityProblem } from "../../src/core/redis-durability.ts";
import { RepositoryLock } from "../../src/jobs/hg-sync/repository-lock.ts";
import { type PrivateRedis, startPrivateRedis } from "../support/private-redis.ts";
import { declareExchanges, openPublisher, type Publisher, queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
let publisher: Publisher;
const servers: PrivateRedis[] = [];
const dataDirs: string[] = [];
const bridges: BridgeHandle[] = [];
const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "durability-test");

beforeAll(async () => {
  env = await createTestEnvironment("bridge-durability");
  publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
});

afterAll(async () => {
  for (const bridge of bridges) await bridge.close();
  await publisher?.close();
  for (const server of servers) await server.kill();
  for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  await env?.cleanup();
});

async function redisServer(options: { appendfsync?: "always" | "everysec"; replicaOf?: number } = {}): Promise<PrivateRedis> {
  const dataDir = options.appendfsync ? await mkdtemp(path.join(tmpdir(), "pb-durability-")) : undefined;
  if (dataDir) dataDirs.push(dataDir);
  const server = await startPrivateRedis({
    ...(dataDir ? { dataDir, appendfsync: options.appendfsync } : {}),
    ...(options.replicaOf ? { replicaOf: options.replicaOf } : {}),
  });
  servers.push(server);
  return server;
}

async function bridgeOn(config: Config): Promise<BridgeHandle> {
  const bridge = await startBridge({ config, log, redisRetryMaxDelayMs: 300 });
  bridges.push(bridge);
  await waitFor("the bridge to consume every feed", () => bridge.status().feeds.every((f) => f.consuming));
  return bridge;
}

async function stop(bridge: BridgeHandle): Promise<void> {
  await bridge.close();
  bridges.splice(bridges.indexOf(bridge), 1);
}

const tcQueue = () => pulseFeeds(env.config).find((feed) => feed.kind === "taskcluster")!.queue;

async function publish(from: number, count: number): Promise<ReturnType<typeof taskCompletedMessage>[]> {
  const messages = Array.from({ length: count }, (_, i) => taskCompletedMessage(from + i, env.config));
  await publisher.publishMany(messages.map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));
  return messages;
}

async function allAcked(): Promise<boolean> {
  const depth = await queueDepth(tcQueue());
  return depth?.ready === 0 && depth.unacked === 0;
}

async function jobCount(url: string, config: Config, taskIds: string[]): Promise<{ found: number; total: number }> {
  const check = new Redis(url, { maxRetriesPerRequest: 1 });
  const queues = openQueues(check, config.redis.prefix);
  try {
    const host = new URL(config.taskcluster.rootUrl).host;
    const found = (await Promise.all(taskIds.map((id) => queues["tc-ingest"].getJob(`tc|${host}|${id}|0`)))).filter(Boolean).length;
    const counts = await queues["tc-ingest"].getJobCounts();
    return { found, total: Object.values(counts).reduce((a, b) => a + b, 0) };
  } finally {
    await closeQueues(queues);
    check.disconnect();
  }
}

async function metricValue(): Promise<number | undefined> {
  return (await redisDurabilityOk.get()).values[0]?.value;
}

describe("REDIS_DURABILITY=fsync", () => {
  it("refuses a Redis without AOF, and one with appendfsync everysec", async () => {
    const plain = await redisServer();
    await expect(startBridge({ config: env.configWith({ REDIS_URL: plain.url, REDIS_DURABILITY: "fsync" }), log })).rejects.toThrow(
      /cannot give REDIS_DURABILITY=fsync: it runs appendonly no, appendfsync everysec .*REDIS_DURABILITY_UNCHECKED/,
    );
    const everysec = await redisServer({ appendfsync: "everysec" });
    await expect(startBridge({ config: env.configWith({ REDIS_URL: everysec.url, REDIS_DURABILITY: "fsync" }), log })).rejects.toThrow(
      /it runs appendonly yes, appendfsync everysec/,
    );
    expect(await metricValue()).toBe(0);
  });

  it("runs anyway with REDIS_DURABILITY_UNCHECKED, reporting pulse_bridge_redis_durability_ok 0", async () => {
    const plain = await redisServer();
    const bridge = await bridgeOn(env.configWith({ REDIS_URL: plain.url, REDIS_DURABILITY: "fsync", REDIS_DURABILITY_UNCHECKED: "true" }));
    expect(await metricValue()).toBe(0);
    await stop(bridge);
  });

  it("starts on a Redis with appendfsync always and acks once the job is there", async () => {
    const always = await redisServer({ appendfsync: "always" });
    const config = env.configWith({ REDIS_URL: always.url, REDIS_DURABILITY: "fsync" });
    const bridge = await bridgeOn(config);
    expect(await metricValue()).toBe(1);
    const messages = await publish(1_000, 20);
    await waitFor("every message acked", allAcked);
    expect(
      await jobCount(
        always.url,
        config,
        messages.map((m) => m.taskId),
      ),
    ).toEqual({ found: 20, total: 20 });
    await stop(bridge);
  });
});

describe("REDIS_DURABILITY=replicas:1", () => {
  it("refuses a master without a replica, starts with one, and acks nothing while the replica is away", async () => {
    const master = await redisServer();
    const config = env.configWith({ REDIS_URL: master.url, REDIS_DURABILITY: "replicas:1", REDIS_WAIT_TIMEOUT: "300ms", PULSE_PREFETCH: "40" });
    // Too few replicas passes by itself after a failover: the start waits for it, then gives up.
    await expect(startBridge({ config, log, durabilityPatienceMs: 1_500 })).rejects.toThrow(
      /cannot give REDIS_DURABILITY=replicas:1: it has 0 replicas online/,
    );

    const replica = await redisServer({ replicaOf: master.port });
    const probe = new Redis(master.url, { maxRetriesPerRequest: 1 });
    const replicaOnline = async () => /slave0:.*state=online/.test(await probe.info("replication"));
    try {
      await waitFor("the replica to be online", replicaOnline);
      const bridge = await bridgeOn(config);
      expect(await metricValue()).toBe(1);

      const first = await publish(2_000, 1);
      await waitFor("the first message acked", allAcked);

      await replica.kill();
      const held = await publish(2_001, 150);
      await waitFor("the bridge to pause", () => bridge.status().paused);
      await waitFor("the consumer to be cancelled", () => bridge.status().feeds.every((f) => !f.consuming));
      // The adds reached the master, but WAIT saw no replica: nothing was acked.
      const depth = await queueDepth(tcQueue());
      expect(depth!.ready + depth!.unacked).toBe(held.length);
      expect(bridge.status().outstanding).toBe(depth!.unacked);

      await replica.start();
      await waitFor("the replica to be online again", replicaOnline);
      await waitFor("the bridge to resume", () => !bridge.status().paused && bridge.status().feeds.every((f) => f.consuming));
      await waitFor("every message acked", allAcked, { timeoutMs: 30_000 });
      const ids = [...first, ...held].map((m) => m.taskId);
      expect(await jobCount(master.url, config, ids)).toEqual({ found: ids.length, total: ids.length });
      // The replica has them too (it resynchronized from the master).
      expect(await jobCount(replica.url, config, ids)).toEqual({ found: ids.length, total: ids.length });
      // One WAIT per event-loop turn's adds, not one per add.
      const calls = (command: string, stats: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      const stats = await probe.info("commandstats");
      console.log(`replicas:1: ${calls("wait", stats)} WAIT for ${calls("evalsha", stats) + calls("eval", stats)} scripts (adds and re-adds)`);
      expect(calls("wait", stats) * 3).toBeLessThan(calls("evalsha", stats) + calls("eval", stats));
      await stop(bridge);
    } finally {
      probe.disconnect();
    }
  });
});

describe("REDIS_DURABILITY with replicas", () => {
  it("through Sentinel, fsync is refused: a failover keeps only what reached a replica", async () => {
    const config = env.configWith({ REDIS_SENTINELS: "127.0.0.1:1", REDIS_DURABILITY: "fsync" });
    const any = new Redis(env.config.redis.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await durabilityProblem(any, config.redis, config.redis.durability)).toMatch(/found through Sentinel.*use replicas:N/);
      expect(await durabilityProblem(any, config.redis, { ...config.redis.durability, mode: "memory" })).toBeUndefined();
    } finally {
      any.disconnect();
    }
  });

  it("a bridge started while the master has no replica yet (a failover) waits for one instead of exiting", async () => {
    const master = await redisServer();
    const config = env.configWith({ REDIS_URL: master.url, REDIS_DURABILITY: "replicas:1", REDIS_WAIT_TIMEOUT: "300ms" });
    const starting = startBridge({ config, log });
    const outcome = await Promise.race([starting.then(() => "started"), new Promise((resolve) => setTimeout(() => resolve("waiting"), 2_000))]);
    expect(outcome).toBe("waiting");
    await redisServer({ replicaOf: master.port });
    const bridge = await starting;
    bridges.push(bridge);
    await waitFor("the bridge to consume every feed", () => bridge.status().feeds.every((f) => f.consuming));
    const messages = await publish(3_000, 5);
    await waitFor("every message acked", allAcked);
    expect(
      await jobCount(
        master.url,
        config,
        messages.map((m) => m.taskId),
      ),
    ).toEqual({ found: 5, total: 5 });
    await stop(bridge);
  });

  it("the repository lock counts as taken until a replica has it, so a promoted replica knows its holder", async () => {
    const master = await redisServer();
    const replica = await redisServer({ replicaOf: master.port });
    const redis = new Redis(master.url, { maxRetriesPerRequest: 1 });
    try {
      await waitFor("the replica to be online", async () => /slave0:.*state=online/.test(await redis.info("replication")));
      const wait = { count: 1, timeoutMs: 300 };
      const held = await RepositoryLock.acquire(redis, "lock:a", 10_000, wait);
      expect(held).toBeDefined();
      const onReplica = new Redis(replica.url, { maxRetriesPerRequest: 1 });
      expect(await onReplica.get("lock:a")).toBe(held!.token);
      onReplica.disconnect();
      await held!.release();

      await replica.kill();
      await waitFor("the master to see the replica gone", async () => !/slave0:.*state=online/.test(await redis.info("replication")));
      // No replica confirms it: not taken, and not left behind to block the next sync.
      expect(await RepositoryLock.acquire(redis, "lock:b", 10_000, wait)).toBeUndefined();
      expect(await redis.exists("lock:b")).toBe(0);
      // Without replicas asked for, the same master gives it at once.
      const plain = await RepositoryLock.acquire(redis, "lock:b", 10_000);
      expect(plain).toBeDefined();
      await plain!.release();
    } finally {
      redis.disconnect();
    }
  });
});
