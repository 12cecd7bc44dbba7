/**
 * Redis connections for BullMQ and our own keys, for every role and every
 * topology: one server (REDIS_URL), a master found through Sentinel
 * (REDIS_SENTINELS) or a Cluster (REDIS_CLUSTER_NODES).
 *
 * Workers and QueueEvents need blocking connections with
 * `maxRetriesPerRequest: null`; producers (the bridge) want commands to fail
 * fast while Redis is away so that they stop acking instead of queueing
 * commands in memory.
 *
 * Sentinel: ioredis asks the sentinels for the master, and after a failover
 * (a connection closed by the old master, or a READONLY answer from a demoted
 * one) asks again and reconnects to the new master.
 * Cluster: ioredis routes each command by the slot of its keys; BullMQ's
 * scripts touch several keys of one queue, which a {hash tag} in
 * BULLMQ_PREFIX keeps in one slot (src/core/config.ts checks it).
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import type { Config } from "./config.ts";

export type { Redis };
/** What createRedis returns: commands, status and events are the same for both. */
export type RedisClient = Redis | Cluster;

/** The part of the configuration that says where Redis is. */
export type RedisConnection = Pick<Config["redis"], "url" | "topology">;

// Reconnect forever with a capped backoff; the roles decide what to do meanwhile.
const reconnectDelay = (attempt: number) => Math.min(250 * 2 ** Math.min(attempt, 5), 5_000);

/** user, password, TLS and database of REDIS_URL: what every topology takes from it. */
function credentials(url: string): RedisOptions {
  const parsed = new URL(url);
  const database = Number(parsed.pathname.slice(1) || "0");
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
    ...(Number.isInteger(database) && database > 0 ? { db: database } : {}),
  };
}

/** A connection to Redis as configured; a plain URL means one server (tools and tests on a private Redis). */
export function createRedis(connection: string, purpose: "producer" | "worker", extra?: RedisOptions): Redis;
export function createRedis(connection: RedisConnection | string, purpose: "producer" | "worker", extra?: RedisOptions): RedisClient;
export function createRedis(where: RedisConnection | string, purpose: "producer" | "worker", extra: RedisOptions = {}): RedisClient {
  const connection: RedisConnection = typeof where === "string" ? { url: where, topology: { kind: "single" } } : where;
  const options: RedisOptions =
    purpose === "worker"
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000 };
  const common: RedisOptions = { ...options, retryStrategy: reconnectDelay, lazyConnect: false, ...extra };
  const { topology } = connection;
  let redis: RedisClient;
  if (topology.kind === "single") {
    redis = new Redis(connection.url, common);
  } else if (topology.kind === "sentinel") {
    redis = new Redis({
      ...credentials(connection.url),
      ...common,
      sentinels: topology.sentinels,
      name: topology.master,
      ...(topology.password ? { sentinelPassword: topology.password } : {}),
      sentinelRetryStrategy: reconnectDelay,
      // A master demoted by a failover answers writes with READONLY: find the new one.
      reconnectOnError: (error) => error.message.startsWith("READONLY"),
    });
  } else {
    // A Cluster has only database 0.
    const { db: _db, ...nodeCredentials } = credentials(connection.url);
    const { retryStrategy, lazyConnect, enableOfflineQueue, ...nodeOptions } = common;
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...nodeCredentials, ...nodeOptions },
      clusterRetryStrategy: (attempt) => retryStrategy?.(attempt) ?? null,
      lazyConnect: lazyConnect ?? false,
      enableOfflineQueue: enableOfflineQueue ?? true,
      enableReadyCheck: true,
      // While a node is down or its slots move, commands are retried through
      // the refreshed slot table before they fail.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 500,
    };
    redis = new Cluster(topology.nodes, clusterOptions);
  }
  // An ioredis client without an 'error' listener logs to stderr on every
  // reconnection attempt; callers attach their own logging listener.
  redis.on("error", () => {});
  return redis;
}

/** Where Redis is, for logs and errors (no credentials). */
export function describeRedis(connection: RedisConnection): string {
  const { topology } = connection;
  if (topology.kind === "sentinel") return `Sentinel master ${topology.master} (${topology.sentinels.map((s) => `${s.host}:${s.port}`).join(",")})`;
  if (topology.kind === "cluster") return `Cluster ${topology.nodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
  const parsed = new URL(connection.url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ""}`;
}

/**
 * The servers that hold our data: the one server (or current master) or
 * every Cluster master. Durability checks and doctor ask each of them.
 */
export function dataNodes(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes("master") : [redis];
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/** The fields of an INFO answer (`name:value` lines; `#` lines name sections). */
export function infoFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}
