/** The worker pools `pulse-bridge worker <pool>` can run. */
import type { QueueName } from "../contract/contracts.ts";
import type { PoolDefinition } from "./pool.ts";

export const POOLS: Partial<{ [Q in QueueName]: () => Promise<PoolDefinition<Q>> }> = {
  "hg-sync": async () => (await import("./hg-sync/pool.ts")).hgSyncPool,
  "tc-ingest": async () => (await import("./tc-ingest/pool.ts")).tcIngestPool,
};
