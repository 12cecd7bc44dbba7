/**
 * The faults of the chaos suite (docs/ARCHITECTURE.md, "Proof"), each a small function on the resources of one chaos
 * run (never on anything shared: only our broker connections and queues,
 * our private Redis, our own database's backends, our stand-in).
 */
import pg from "pg";
import type { Config } from "../src/core/config.ts";
import { pulseFeeds } from "../src/core/config.ts";
import type { QueueApiStandIn } from "../src/stand-ins/queue-api-server.ts";
import type { PrivateRedis } from "../test/support/private-redis.ts";
import { closeConnections, deleteQueue, queueDepths } from "../test/support/pulse.ts";
import { SERVICES } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";
import type { ProcessGroup, RoleProcess } from "./processes.ts";

export interface FaultRecord {
  name: string;
  at: Date;
  detail: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function sigkillRestart(group: ProcessGroup, proc: RoleProcess, downMs = 1_000): Promise<string> {
  const pid = proc.child.pid;
  await group.sigkillAndRestart(proc, downMs);
  return `SIGKILL ${proc.label} (pid ${pid}), restarted after ${downMs} ms as pid ${proc.child.pid}`;
}

/** Force-closes every broker connection of this run's bridges (their names carry our queue names). */
export async function closeBridgeConnections(config: Config): Promise<string> {
  const closed = await closeConnections(config.pulse.queuePrefix, "chaos: connection closed");
  return `closed ${closed} broker connections`;
}

/**
 * Deletes the taskcluster feed's queue behind the bridges' backs, as Pulse
 * does to a queue over its limit. Messages published while no queue is bound
 * are dropped by the exchange (that is AMQP, not the bridge), so the caller
 * pauses publishing first and we wait until the queue is drained; then the
 * test is that the bridges notice, re-declare and consume again.
 */
export async function deleteTaskclusterQueue(config: Config, consumersExpected: number): Promise<string> {
  const queue = pulseFeeds(config).find((f) => f.kind === "taskcluster")!.queue;
  await waitFor(
    `${queue} to drain before deletion`,
    async () => {
      const depth = (await queueDepths()).get(queue);
      return depth !== undefined && depth.ready === 0 && depth.unacked === 0;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  await deleteQueue(queue);
  const started = Date.now();
  await waitFor(`${queue} to be re-declared by the bridges`, async () => (await queueDepths()).has(queue), { timeoutMs: 120_000, intervalMs: 250 });
  await waitFor(`${consumersExpected} consumers on ${queue}`, async () => (await consumerCount(queue)) >= consumersExpected, {
    timeoutMs: 120_000,
    intervalMs: 250,
  });
  return `deleted ${queue}; re-declared and consumed again after ${Date.now() - started} ms`;
}

async function consumerCount(queue: string): Promise<number> {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const { stdout } = await promisify(execFile)("rabbitmqctl", ["list_queues", "name", "consumers", "--formatter", "json", "-q"]);
  const row = (JSON.parse(stdout) as Array<{ name: string; consumers: number }>).find((r) => r.name === queue);
  return row?.consumers ?? 0;
}

/** Stops the private Redis (SIGKILL; it keeps what it acknowledged: fsync'd AOF) for `downMs`, then starts it. */
export async function redisOutage(redis: PrivateRedis, downMs = 10_000): Promise<string> {
  await redis.kill();
  await sleep(downMs);
  await redis.start();
  return `redis-server on port ${redis.port} SIGKILLed, restarted after ${downMs} ms`;
}

/** Terminates every backend connected to this run's database (and only those). */
export async function terminateDatabaseConnections(databaseUrl: string): Promise<string> {
  const database = new URL(databaseUrl).pathname.slice(1);
  const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` });
  await client.connect();
  try {
    const { rows } = await client.query<{ terminated: boolean }>(
      "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
      [database],
    );
    return `pg_terminate_backend on ${rows.filter((r) => r.terminated).length} connections to ${database}`;
  } finally {
    await client.end();
  }
}

/** The Queue API stand-in answers 500 to the next `times` requests. */
export function standInErrors(standIn: QueueApiStandIn, times: number): string {
  standIn.failNext({ path: /\/api\/queue\/v1\//, status: 500, times });
  standIn.failNext({ path: /./, status: "reset", times: Math.ceil(times / 10) });
  return `Queue API stand-in: next ${times} requests answer 500, ${Math.ceil(times / 10)} connections reset`;
}

/** The stand-in answers later than the workers' request timeout for `forMs`. */
export async function standInTimeouts(standIn: QueueApiStandIn, latencyMs: number, forMs: number): Promise<string> {
  const before = standIn.latencyMs;
  standIn.latencyMs = latencyMs;
  await sleep(forMs);
  standIn.latencyMs = before;
  return `Queue API stand-in answered after ${latencyMs} ms for ${forMs} ms`;
}
