/**
 * The worker pools `pulse-bridge worker <pool>` and `start` can run: one per
 * queue but dead-letter (dead letters wait for an operator). Loaded on
 * demand, so a process carries only its own pool's libraries.
 */
import type { QueueName } from "../contract/contracts.ts";
import type { PoolDefinition } from "./pool.ts";

export type PoolName = Exclude<QueueName, "dead-letter">;

export const POOLS: { [Q in PoolName]: () => Promise<PoolDefinition<Q>> } = {
  "hg-sync": async () => (await import("./hg-sync/pool.ts")).hgSyncPool,
  "tc-ingest": async () => (await import("./tc-ingest/pool.ts")).tcIngestPool,
};

export const POOL_NAMES = Object.keys(POOLS) as PoolName[];
