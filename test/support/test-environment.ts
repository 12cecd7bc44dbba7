/**
 * Isolation on the machine's shared services. Each test file gets its own:
 * PostgreSQL database (migrated), BullMQ key prefix, Pulse queue names and
 * exchange names (PULSE_EXCHANGE_PREFIX), and clones folder. `cleanup()`
 * removes only what this environment created; it never flushes or
 * reconfigures a service. Set KEEP_TEST_DATABASE=1 to keep the database for
 * inspection.
 *
 * With REDIS_CLUSTER_NODES among the extra variables the BullMQ prefix is a
 * hash tag (`{t-<id>}`), as Cluster requires. BullMQ keys are deleted only
 * from the machine's Redis: a test on a private Redis, Sentinel setup or
 * Cluster cleans up by killing its servers.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import amqp from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import { type Config, loadConfig, PULSE_EXCHANGES, pulseFeeds } from "../../src/core/config.ts";
import { migrate } from "../../src/storage/migrate.ts";
import { type Database, openDatabase } from "../../src/storage/prisma.ts";

export const SERVICES = {
  postgres: "postgresql://postgres@127.0.0.1:5432",
  redis: "redis://127.0.0.1:6379",
  amqp: "amqp://guest:guest@127.0.0.1:5672",
};

export interface TestEnvironment {
  /** Unique, safe in names: `<label>-<random>`. */
  id: string;
  /** The environment variables a pulse-bridge process of this test would get. */
  env: Record<string, string>;
  config: Config;
  db: Database;
  clonesDir: string;
  /** Re-read the config with extra variables (e.g. a Redis URL pointing elsewhere). */
  configWith(extra: Record<string, string>): Config;
  cleanup(): Promise<void>;
}

export async function createTestEnvironment(label: string, extraEnv: Record<string, string> = {}): Promise<TestEnvironment> {
  const id = `${label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 30)}-${randomBytes(4).toString("hex")}`;
  const databaseName = `pbt_${id.replace(/-/g, "_")}`;
  const databaseUrl = `${SERVICES.postgres}/${databaseName}`;
  await migrate(databaseUrl);
  const clonesDir = await mkdtemp(path.join(tmpdir(), `pb-clones-${id}-`));
  const env: Record<string, string> = {
    PULSE_URL: SERVICES.amqp,
    PULSE_QUEUE: `t-${id}`,
    PULSE_EXCHANGE_PREFIX: `t-${id}/`,
    PULSE_DECLARE_EXCHANGES: "true",
    REDIS_URL: SERVICES.redis,
    // The machine's Redis has no persistence; tests of the other modes use private servers.
    REDIS_DURABILITY: "memory",
    BULLMQ_PREFIX: extraEnv.REDIS_CLUSTER_NODES ? `{t-${id}}` : `t-${id}`,
    DATABASE_URL: databaseUrl,
    CLONES_DIR: clonesDir,
    ALLOWED_HOSTS: "127.0.0.1,localhost",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    ...extraEnv,
  };
  const config = loadConfig(env);
  const db = openDatabase({ url: databaseUrl, poolSize: 5 });
  return {
    id,
    env,
    config,
    db,
    clonesDir,
    configWith: (extra) => loadConfig({ ...env, ...extra }),
    async cleanup() {
      await db.$disconnect().catch(() => {});
      if (config.redis.topology.kind === "single" && env.REDIS_URL === SERVICES.redis) await deleteRedisKeys(config.redis.prefix);
      await deletePulseObjects(config);
      await rm(clonesDir, { recursive: true, force: true });
      if (process.env.KEEP_TEST_DATABASE !== "1") await dropDatabase(databaseName);
    },
  };
}

async function dropDatabase(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Deletes this test's BullMQ keys (and only those). */
export async function deleteRedisKeys(prefix: string, url = SERVICES.redis): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** Deletes this test's Pulse queues and its prefixed exchanges on the local broker. */
export async function deletePulseObjects(config: Config): Promise<void> {
  const connection = await amqp.connect(SERVICES.amqp);
  try {
    // A failed delete closes the channel; use one per operation.
    const feeds = pulseFeeds(config);
    for (const queue of new Set(feeds.flatMap((feed) => [feed.queue, feed.legacyQueue, feed.poisonQueue]))) {
      const channel = await connection.createChannel();
      await channel.deleteQueue(queue).catch(() => {});
      await channel.close().catch(() => {});
    }
    for (const name of new Set([...Object.values(config.pulse.exchanges), ...feeds.map((feed) => feed.poisonExchange)])) {
      if ((Object.values(PULSE_EXCHANGES) as string[]).includes(name)) continue; // never touch the real names
      const channel = await connection.createChannel();
      await channel.deleteExchange(name).catch(() => {});
      await channel.close().catch(() => {});
    }
  } finally {
    await connection.close();
  }
}
