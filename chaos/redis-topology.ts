/**
 * The private Redis of a chaos run, in one of three topologies, and its
 * fault: what losing Redis means there.
 *
 * - single: one redis-server (AOF, appendfsync always); fault: SIGKILL, down
 *   for `downMs`, start again (chaos/faults.ts, redisOutage).
 * - sentinel: a master, a replica and three sentinels
 *   (test/support/private-sentinel.ts); fault, `failovers` times: SIGKILL the
 *   current master, the sentinels promote the replica, the killed server comes
 *   back as a replica (so the next failover has a replica to promote).
 * - cluster: three masters, no replicas (test/support/private-cluster.ts);
 *   fault: SIGKILL the master serving the run's BullMQ hash tag (or every
 *   master), down for `downMs`, start it again from its nodes.conf and AOF.
 *
 * What the processes are told to ask of Redis (REDIS_DURABILITY): Cluster
 * runs the default, `fsync` (every master persists each write before it
 * answers; no replica can take over). Sentinel runs `replicas:1`: a failover
 * promotes the replica, so only what reached it survives (the bridge refuses
 * `fsync` there), and while the killed master is away the new one has no
 * replica, so the bridge holds its acks until it is back. Single keeps the
 * harness's historical `memory`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type PrivateCluster, startPrivateCluster } from "../test/support/private-cluster.ts";
import { type PrivateRedis, startPrivateRedis } from "../test/support/private-redis.ts";
import { type PrivateSentinel, startPrivateSentinel } from "../test/support/private-sentinel.ts";
import { redisOutage } from "./faults.ts";

export type RedisTopologyKind = "single" | "sentinel" | "cluster";

export interface RedisFaultOptions {
  /** single and cluster: how long the killed server stays down. */
  downMs: number;
  /** sentinel: how many master kills (failovers) in the run. */
  failovers: number;
  /** cluster: kill the master of the run's hash tag only, or every master. */
  clusterKill: "owner" | "all";
}

export interface ChaosRedis {
  kind: RedisTopologyKind;
  /** Variables that point the processes (and the harness's config) at it. */
  env: Record<string, string>;
  /** The Redis faults of this topology, in the order they must run (each starts after the previous ended). */
  faults(prefix: string): Array<{ name: string; run: () => Promise<string> }>;
  describe(): string;
  close(): Promise<void>;
}

export async function startChaosRedis(kind: RedisTopologyKind, options: RedisFaultOptions): Promise<ChaosRedis> {
  if (kind === "sentinel") return sentinelRedis(await startPrivateSentinel(), options);
  if (kind === "cluster") return clusterRedis(await startPrivateCluster(), options);
  const dataDir = await mkdtemp(path.join(tmpdir(), "pb-chaos-redis-"));
  let redis: PrivateRedis;
  try {
    redis = await startPrivateRedis({ dataDir });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    kind,
    env: { REDIS_URL: redis.url },
    faults: () => [{ name: `Redis down ${options.downMs / 1000} s`, run: () => redisOutage(redis, options.downMs) }],
    describe: () => `private Redis on port ${redis.port} (AOF, appendfsync always)`,
    async close() {
      await redis.kill();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function sentinelRedis(sentinel: PrivateSentinel, options: RedisFaultOptions): ChaosRedis {
  return {
    kind: "sentinel",
    env: { REDIS_SENTINELS: sentinel.sentinels, REDIS_SENTINEL_MASTER: sentinel.master, REDIS_DURABILITY: "replicas:1" },
    faults: () =>
      Array.from({ length: options.failovers }, (_, i) => ({
        name: `Redis master SIGKILLed, failover ${i + 1}/${options.failovers}`,
        run: async () => {
          const { killed, promoted, failoverMs } = await sentinel.killMaster();
          const started = Date.now();
          await sentinel.restart(killed);
          return `SIGKILL master on port ${killed}; sentinels promoted ${promoted} after ${failoverMs} ms; ${killed} back as its replica after ${Date.now() - started} ms`;
        },
      })),
    describe: () => `private Sentinel setup: data servers ${sentinel.dataPorts.join(", ")} (AOF, appendfsync always), sentinels ${sentinel.sentinels}`,
    close: () => sentinel.close(),
  };
}

function clusterRedis(cluster: PrivateCluster, options: RedisFaultOptions): ChaosRedis {
  return {
    kind: "cluster",
    env: { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_DURABILITY: "fsync" },
    faults: (prefix) => [
      {
        name: `Redis Cluster ${options.clusterKill === "all" ? "every master" : "the queues' master"} down ${options.downMs / 1000} s`,
        run: async () => {
          const owner = await cluster.ownerOf(`${prefix}:probe`);
          const victims = options.clusterKill === "all" ? cluster.ports : [owner];
          for (const port of victims) await cluster.kill(port);
          await new Promise((resolve) => setTimeout(resolve, options.downMs));
          const started = Date.now();
          await cluster.restart(...victims);
          return `SIGKILL cluster node(s) ${victims.join(", ")} (${prefix} lives on ${owner}), restarted after ${options.downMs} ms; cluster_state:ok after ${Date.now() - started} ms`;
        },
      },
    ],
    describe: () => `private Redis Cluster: masters ${cluster.nodes} (AOF, appendfsync always, no replicas)`,
    close: () => cluster.close(),
  };
}
