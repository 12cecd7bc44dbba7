/**
 * BullMQ's Redis: reachable (through Sentinel or the Cluster when so
 * configured), never evicting (an evicted key is a lost job, or a corrupt
 * queue), persistent enough for what we promise (the bridge acks a Pulse
 * message once Redis has its job, so a Redis that forgets jobs on restart
 * loses messages Pulse will not send again), and able to give
 * REDIS_DURABILITY, which the bridge checks the same way at start. On a
 * Cluster every master is asked and the first problem found is reported.
 */
import type { Config } from "../core/config.ts";
import { createRedis, dataNodes, describeRedis, infoFields, type Redis, type RedisClient } from "../core/redis.ts";
import { durabilityName, durabilityProblem } from "../core/redis-durability.ts";
import { ALL_ROLES, type CheckResult, reason, result, withTimeout } from "./check.ts";

const PERSISTENCE_FIX = "appendonly yes and appendfsync everysec (or always) in redis.conf, or CONFIG SET appendonly yes then CONFIG REWRITE";

/** CONFIG GET of one parameter; undefined where CONFIG is disabled (managed Redis). */
async function configGet(redis: Redis, name: string): Promise<string | undefined> {
  try {
    const answer = (await redis.call("CONFIG", "GET", name)) as string[];
    return answer[1];
  } catch {
    return undefined;
  }
}

const DURABLE_ROLES = ["bridge", "webhook", "replay"];

export async function checkRedis(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const target = describeRedis(config.redis);
  const client = createRedis(config.redis, "producer", {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    let info: Map<string, string>;
    let redis: Redis;
    try {
      await withTimeout(target, client.connect(), timeoutMs);
      // The master through Sentinel, or the first Cluster master; durability asks every one.
      redis = dataNodes(client)[0]!;
      info = infoFields(await redis.info());
    } catch (error) {
      return [
        result("redis", ALL_ROLES, "fail", `${target}: ${reason(error)}`, "start Redis or correct REDIS_URL (REDIS_SENTINELS, REDIS_CLUSTER_NODES)"),
        result("redis eviction", ALL_ROLES, "skip", "not checked: Redis did not answer"),
        result("redis persistence", ALL_ROLES, "skip", "not checked: Redis did not answer"),
        result("redis durability", DURABLE_ROLES, "skip", "not checked: Redis did not answer"),
      ];
    }
    const checks = [result("redis", ALL_ROLES, "ok", `${target} (Redis ${info.get("redis_version") ?? "?"})`)];
    checks.push(await durabilityCheck(config, client));

    const policy = info.get("maxmemory_policy") ?? (await configGet(redis, "maxmemory-policy"));
    if (policy === undefined) checks.push(result("redis eviction", ALL_ROLES, "warn", "maxmemory-policy could not be read", "make sure it is noeviction"));
    else if (policy !== "noeviction") {
      checks.push(
        result(
          "redis eviction",
          ALL_ROLES,
          "fail",
          `maxmemory-policy is ${policy}: under memory pressure Redis deletes keys, and BullMQ loses jobs (Pulse messages already acked)`,
          "maxmemory-policy noeviction in redis.conf (now: CONFIG SET maxmemory-policy noeviction)",
        ),
      );
    } else checks.push(result("redis eviction", ALL_ROLES, "ok", "maxmemory-policy noeviction"));

    const aof = info.get("aof_enabled") === "1";
    if (aof) {
      const fsync = await configGet(redis, "appendfsync");
      if (fsync === "no") {
        checks.push(
          result(
            "redis persistence",
            ALL_ROLES,
            "warn",
            "AOF on, but appendfsync no: the OS decides when writes reach the disk (a crash can lose the last ~30 s of jobs)",
            "appendfsync everysec (or always)",
          ),
        );
      } else checks.push(result("redis persistence", ALL_ROLES, "ok", `AOF on${fsync ? ` (appendfsync ${fsync})` : ""}`));
    } else {
      const save = await configGet(redis, "save");
      if (save) {
        checks.push(
          result(
            "redis persistence",
            ALL_ROLES,
            "warn",
            `RDB snapshots only (save "${save}"): a crash loses the jobs added since the last snapshot, whose Pulse messages were acked`,
            PERSISTENCE_FIX,
          ),
        );
      } else {
        checks.push(
          result(
            "redis persistence",
            ALL_ROLES,
            "warn",
            save === undefined
              ? "no AOF, and the RDB setting could not be read"
              : "none (no AOF, no RDB): a Redis restart loses every queued job, whose Pulse messages were acked",
            PERSISTENCE_FIX,
          ),
        );
      }
    }
    return checks;
  } finally {
    client.disconnect();
  }
}

/** What the bridge checks at start: the same words, so doctor tells before the bridge refuses. */
async function durabilityCheck(config: Config, client: RedisClient): Promise<CheckResult> {
  const { durability } = config.redis;
  const name = `REDIS_DURABILITY=${durabilityName(durability)}`;
  let problem: string | undefined;
  try {
    problem = await durabilityProblem(client, config.redis, durability);
  } catch (error) {
    problem = `it could not be checked (${reason(error)})`;
  }
  if (problem === undefined) return result("redis durability", DURABLE_ROLES, "ok", `${name} is given`);
  const fix = "configure Redis for it (fsync: appendonly yes, appendfsync always; replicas:N: N replicas attached) or choose another REDIS_DURABILITY";
  if (durability.unchecked)
    return result("redis durability", DURABLE_ROLES, "warn", `${name} is not given: ${problem}; roles run anyway (REDIS_DURABILITY_UNCHECKED)`, fix);
  return result("redis durability", DURABLE_ROLES, "fail", `${name} is not given: ${problem}; the bridge refuses to start`, fix);
}
