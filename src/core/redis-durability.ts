/**
 * What "Redis has the job" means before the bridge acks a message
 * (REDIS_DURABILITY), and the check that the Redis in use can give it.
 *
 * - `memory`: Redis accepted the add. A crash of Redis' machine loses what it
 *   had not written yet (with appendfsync everysec, up to about a second).
 * - `fsync`: Redis runs AOF with `appendfsync always`, so it answers an add
 *   only once the write is fsynced; nothing to do per add, only a check at
 *   start (Redis 7.0 has no WAITAOF to ask per write).
 * - `replicas:N`: after each event-loop turn's adds, one `WAIT N timeout` on
 *   the producer connection (WAIT covers every write this connection made
 *   before it); fewer than N replicas by the timeout fails those adds like a
 *   Redis outage (enqueuer.ts: held, consumption paused, retried; the re-add
 *   of a deterministic job id is a no-op), so nothing is acked early.
 *
 * The check runs at start of every role that acks something outside Redis
 * once Redis has its job (the bridge, the webhook receiver, replay --poison)
 * and in doctor: persistence through CONFIG GET (and INFO persistence for the
 * last write), replicas through INFO replication. Through Sentinel it asks
 * the current master; on a Cluster every master (fsync), and `replicas:N` is
 * refused there (WAIT covers one node's writes of one connection). When Redis
 * cannot give the guarantee the role refuses to start, unless
 * REDIS_DURABILITY_UNCHECKED: then it logs an error and reports
 * pulse_bridge_redis_durability_ok 0.
 *
 * After a Sentinel failover the new master was a replica configured like the
 * old one (the tests' and docker-compose's servers share one setting); the
 * check does not run again.
 */
import type { RedisDurability } from "./config.ts";
import type { Logger } from "./log.ts";
import { redisDurabilityOk } from "./metrics.ts";
import { dataNodes, describeRedis, infoFields, isCluster, type Redis, type RedisClient, type RedisConnection } from "./redis.ts";

export class DurabilityError extends Error {
  override name = "DurabilityError";
}

const READY_TIMEOUT_MS = 30_000;
/** How long a start waits, by default, for a passing problem (see Problem) to end. */
const PASSING_TIMEOUT_MS = 60_000;

/** REDIS_DURABILITY as written in the configuration. */
export function durabilityName(durability: RedisDurability): string {
  return durability.mode === "replicas" ? `replicas:${durability.replicas}` : durability.mode;
}

async function configValue(redis: Redis, name: string): Promise<string> {
  const reply = (await redis.config("GET", name)) as string[];
  return reply[1] ?? "(unset)";
}

/**
 * Why Redis cannot give `durability`. `passing`: a state that a failover or a
 * replica's resync ends by itself within seconds (too few replicas online, a
 * master just demoted, a Cluster still discovering its masters), as opposed to
 * a setting someone has to change.
 */
interface Problem {
  text: string;
  passing: boolean;
}

const setting = (text: string): Problem => ({ text, passing: false });
const passing = (text: string): Problem => ({ text, passing: true });

/** Why this Redis (every master of a Cluster) cannot give `durability`, or undefined when it can. */
export async function durabilityProblem(redis: RedisClient, connection: RedisConnection, durability: RedisDurability): Promise<string | undefined> {
  return (await findProblem(redis, connection, durability))?.text;
}

async function findProblem(redis: RedisClient, connection: RedisConnection, durability: RedisDurability): Promise<Problem | undefined> {
  if (durability.mode === "memory") return undefined;
  // A failover promotes a replica, which holds only what reached it: the old
  // master's fsynced AOF is then discarded when it rejoins as a replica.
  if (durability.mode === "fsync" && connection.topology.kind === "sentinel")
    return setting("it is found through Sentinel, and a failover keeps only what reached a replica: use replicas:N (N replicas attached to the master)");
  if (isCluster(redis)) {
    const nodes = dataNodes(redis);
    if (durability.mode === "replicas") return setting("it is a Cluster, where WAIT covers one node's writes: use fsync on every master instead");
    for (const node of nodes) {
      const problem = await nodeProblem(node, durability);
      if (problem) return { ...problem, text: `master ${node.options.host}:${node.options.port}: ${problem.text}` };
    }
    return nodes.length ? undefined : passing("no Cluster master is known yet");
  }
  return nodeProblem(redis, durability);
}

async function nodeProblem(redis: Redis, durability: RedisDurability): Promise<Problem | undefined> {
  if (durability.mode === "fsync") {
    let appendonly: string;
    let appendfsync: string;
    try {
      appendonly = await configValue(redis, "appendonly");
      appendfsync = await configValue(redis, "appendfsync");
    } catch (error) {
      return setting(`CONFIG GET is refused (${(error as Error).message}), so appendfsync cannot be checked`);
    }
    if (appendonly !== "yes" || appendfsync !== "always") {
      return setting(`it runs appendonly ${appendonly}, appendfsync ${appendfsync} (fsync needs appendonly yes and appendfsync always)`);
    }
    const persistence = infoFields(await redis.info("persistence"));
    const lastWrite = persistence.get("aof_last_write_status");
    if (lastWrite !== undefined && lastWrite !== "ok") return setting(`its last AOF write failed (aof_last_write_status ${lastWrite})`);
    return undefined;
  }
  const replication = infoFields(await redis.info("replication"));
  const role = replication.get("role");
  if (role !== "master") return passing(`it is a ${role ?? "server of unknown role"}, not a master`);
  const online = [...replication.entries()].filter(([name, value]) => /^slave\d+$/.test(name) && /(^|,)state=online(,|$)/.test(value)).length;
  if (online < durability.replicas)
    return passing(
      `it has ${online} replica${online === 1 ? "" : "s"} online (connected_slaves ${replication.get("connected_slaves") ?? "0"}), fewer than ${durability.replicas}`,
    );
  return undefined;
}

/**
 * The hand-off every role that lets go of something once Redis has its job
 * (the bridge's acks, the webhook's 2xx, replay --poison's acks) goes
 * through: checks REDIS_DURABILITY at start (ensureDurability), and returns
 * what to await after each add before letting go (replicas:N: the WAIT;
 * nothing for memory and fsync). On a refusal the connection is closed.
 */
export async function durableHandOff(
  redis: RedisClient,
  connection: RedisConnection,
  durability: RedisDurability,
  log: Logger,
  patienceMs?: number,
): Promise<(() => Promise<void>) | undefined> {
  try {
    await ensureDurability(redis, connection, durability, log, patienceMs);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  return durability.mode === "replicas" ? replicaWait(redis, durability.replicas, durability.waitTimeoutMs) : undefined;
}

/**
 * Checks at start that `redis` gives what REDIS_DURABILITY asks; throws a
 * DurabilityError saying what to change when it does not (unless unchecked).
 */
async function ensureDurability(
  redis: RedisClient,
  connection: RedisConnection,
  durability: RedisDurability,
  log: Logger,
  patienceMs = PASSING_TIMEOUT_MS,
): Promise<void> {
  const name = durabilityName(durability);
  if (durability.mode === "memory") {
    redisDurabilityOk.set(1);
    log.info({ durability: name }, "REDIS_DURABILITY=memory: a message is acked once Redis has its job in memory");
    return;
  }
  if (redis.status !== "ready") {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off("ready", ready);
        reject(
          new DurabilityError(
            `Redis at ${describeRedis(connection)} did not answer within ${READY_TIMEOUT_MS / 1000} s: cannot check REDIS_DURABILITY=${name}`,
          ),
        );
      }, READY_TIMEOUT_MS);
      const ready = () => {
        clearTimeout(timer);
        resolve();
      };
      redis.once("ready", ready);
    });
  }
  // A role started during a failover, or while a replica resyncs, waits for
  // that to pass instead of exiting; a setting to change fails at once.
  let found = await findProblem(redis, connection, durability);
  for (const deadline = Date.now() + patienceMs; found?.passing && Date.now() < deadline; ) {
    log.warn({ durability: name, problem: found.text }, "Redis cannot give REDIS_DURABILITY yet (a failover, or a replica resyncing?): checking again in 1 s");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    found = await findProblem(redis, connection, durability).catch((error: Error) => passing(`it did not answer (${error.message})`));
  }
  const problem = found?.text;
  if (problem === undefined) {
    redisDurabilityOk.set(1);
    log.info({ durability: name }, "Redis gives the durability REDIS_DURABILITY asks for");
    return;
  }
  const message = `Redis at ${describeRedis(connection)} cannot give REDIS_DURABILITY=${name}: ${problem}`;
  if (!durability.unchecked) {
    redisDurabilityOk.set(0);
    throw new DurabilityError(
      `${message}. Configure Redis for it (fsync: --appendonly yes --appendfsync always; replicas:N: N replicas attached), choose another REDIS_DURABILITY, or set REDIS_DURABILITY_UNCHECKED=true to run anyway`,
    );
  }
  redisDurabilityOk.set(0);
  log.error({ durability: name, problem }, `${message}; running anyway (REDIS_DURABILITY_UNCHECKED): acked messages may be lost with Redis`);
}

/**
 * replicas:N: returns the function the Enqueuer awaits after each add. The
 * adds confirmed in one event-loop turn share one WAIT, sent at setImmediate
 * (after this turn's replies, like write-coalescer.ts' batches).
 */
function replicaWait(redis: RedisClient, replicas: number, timeoutMs: number): () => Promise<void> {
  let batch: Promise<void> | undefined;
  return () =>
    (batch ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        batch = undefined;
        // NOREPLICAS: the Enqueuer takes it for "not now" (held, paused, retried), whatever
        // went wrong: a failed WAIT must never turn its jobs into dead letters.
        redis.wait(replicas, timeoutMs).then(
          (acknowledged) => {
            if (acknowledged >= replicas) resolve();
            else reject(new Error(`NOREPLICAS WAIT: ${acknowledged} of ${replicas} replicas acknowledged within ${timeoutMs} ms`));
          },
          (error: Error) => reject(new Error(`NOREPLICAS WAIT failed: ${error.message}`)),
        );
      });
    }));
}
