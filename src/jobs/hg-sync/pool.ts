/**
 * The hg-sync pool (`pulse-bridge worker hg-sync`): keeps clones current and
 * mirrors history. Each process also (idempotently) registers the periodic
 * reconcile job that pokes every tracked repository.
 */
import type { PoolDefinition } from "../pool.ts";
import { processHgSyncJob, RECONCILE_ALL } from "./processor.ts";

const RECONCILE_SCHEDULER_ID = "reconcile-all";

export const hgSyncPool: PoolDefinition<"hg-sync"> = {
  queue: "hg-sync",
  defaultConcurrency: (config) => config.hgSync.concurrency,
  // Renewed by BullMQ every half period while a job runs, however long the
  // clone; short, so a killed worker's job is taken over soon.
  lockDurationMs: 15_000,
  // A killed worker's sync is taken over within lock expiry + this interval;
  // repositories should not wait half a minute for their next push.
  stalledIntervalMs: 5_000,
  async create(context) {
    const { config, queues } = context;
    return {
      process: (job, token) => processHgSyncJob(context, job, token),
      async started() {
        await queues["hg-sync"].upsertJobScheduler(
          RECONCILE_SCHEDULER_ID,
          { every: config.hgSync.reconcileIntervalMs },
          { name: "reconcile", data: { kind: "reconcile", repoUrl: RECONCILE_ALL }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
        );
      },
    };
  },
};
