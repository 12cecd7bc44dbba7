/**
 * Redis connections for BullMQ. Workers and QueueEvents need blocking
 * connections with `maxRetriesPerRequest: null`; producers (the bridge) want
 * commands to fail fast while Redis is away so that they stop acking instead
 * of queueing commands in memory.
 */
import { Redis, type RedisOptions } from "ioredis";

export type { Redis };

export function createRedis(url: string, purpose: "producer" | "worker", extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    purpose === "worker"
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000 };
  const redis = new Redis(url, {
    ...options,
    // Reconnect forever with a capped backoff; the roles decide what to do meanwhile.
    retryStrategy: (attempt) => Math.min(250 * 2 ** Math.min(attempt, 5), 5_000),
    lazyConnect: false,
    ...extra,
  });
  // An ioredis client without an 'error' listener logs to stderr on every
  // reconnection attempt; callers attach their own logging listener.
  redis.on("error", () => {});
  return redis;
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
