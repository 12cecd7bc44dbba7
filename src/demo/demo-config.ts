/**
 * The demo's own names on the shared services, so it never touches another
 * installation's data: database `<DATABASE_URL's name>_demo`, BullMQ prefix
 * and PULSE_QUEUE suffixed `-demo` (by default `pulse-bridge-demo`, giving
 * queues `queue/<user>/pulse-bridge-demo/...`), and exchanges prefixed
 * `<that name>/` (declared on the local broker, never Pulse's real names).
 * Service locations still come from the environment.
 */

import { createServer } from "node:net";
import amqp from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import { type Config, loadConfig, PULSE_EXCHANGES, pulseFeeds } from "../core/config.ts";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";

export const DEMO_NAME = "pulse-bridge-demo";

type Env = Record<string, string | undefined>;

export function demoEnvironment(env: Env, extra: { taskclusterRootUrl: string; clonesDir: string }): Record<string, string> {
  const base = loadConfig(env);
  const database = new URL(base.database.url);
  const name = decodeURIComponent(database.pathname.replace(/^\//, "")) || "pulse_bridge";
  database.pathname = `/${name.endsWith("_demo") ? name : `${name}_demo`}`;
  const prefix = base.redis.prefix === "bull" ? DEMO_NAME : `${base.redis.prefix}-demo`;
  const queueName = base.pulse.queuePrefix.split("/").slice(2).join("/");
  const defined = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return {
    ...defined,
    DATABASE_URL: database.toString(),
    BULLMQ_PREFIX: prefix,
    PULSE_QUEUE: queueName.endsWith("-demo") ? queueName : `${queueName}-demo`,
    PULSE_EXCHANGE_PREFIX: `${prefix}/`,
    PULSE_DECLARE_EXCHANGES: "true",
    TASKCLUSTER_ROOT_URL: extra.taskclusterRootUrl,
    TC_EXTRA_SOURCES: "[]",
    // A tour on the local services, whose Redis need not persist: only what is asked for.
    REDIS_DURABILITY: defined.REDIS_DURABILITY ?? "memory",
    CLONES_DIR: extra.clonesDir,
    ALLOWED_HOSTS: "127.0.0.1",
    // Pokes come from the demo's messages; no periodic reconcile during the tour.
    RECONCILE_INTERVAL: "1h",
  };
}

/** True when host:port can be bound now (the demo falls back to a free port otherwise). */
export async function portIsFree(host: string, port: number): Promise<boolean> {
  if (port === 0) return true;
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Removes what a previous demo left on the services (only the demo's own names). */
export async function resetDemoState(config: Config): Promise<void> {
  if (!config.redis.prefix.endsWith("-demo") || !config.pulse.queuePrefix.endsWith("-demo")) throw new Error("refusing to reset a non-demo configuration");
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${config.redis.prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }

  const connection = await amqp.connect(config.pulse.url, AMQP_SOCKET_OPTIONS);
  connection.on("error", () => {});
  try {
    const feeds = pulseFeeds(config);
    for (const queue of new Set(feeds.flatMap((feed) => [feed.queue, feed.legacyQueue, feed.poisonQueue]))) {
      const channel = await connection.createChannel();
      channel.on("error", () => {});
      await channel.deleteQueue(queue).catch(() => {});
      await channel.close().catch(() => {});
    }
  } finally {
    await connection.close();
  }

  const database = new URL(config.database.url);
  const name = decodeURIComponent(database.pathname.replace(/^\//, ""));
  if (!name.endsWith("_demo")) throw new Error("refusing to drop a non-demo database");
  database.pathname = "/postgres";
  const client = new pg.Client({ connectionString: database.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Exchanges the demo publishes on (never the real Pulse names). */
export function demoExchanges(config: Config) {
  for (const [key, name] of Object.entries(config.pulse.exchanges)) {
    if (name === PULSE_EXCHANGES[key as keyof typeof PULSE_EXCHANGES]) throw new Error("the demo only publishes on prefixed exchanges");
  }
  return config.pulse.exchanges;
}
