/**
 * `pulse-bridge track` starts work at once: the poke the periodic reconcile
 * would make, enqueued now, so a new repository is cloned and imported by
 * the next free hg-sync worker instead of after RECONCILE_INTERVAL. Same job
 * request as the reconcile (`hgSyncJobRequest`, kind `reconcile`): its
 * deterministic id and per-repository deduplication collapse it with any poke
 * already waiting, so tracking twice, or racing a reconcile, syncs once.
 */

import { hgSyncJobRequest } from "../../contract/job-requests.ts";
import { addJob, closeQueues, openQueues } from "../../contract/queues.ts";
import type { Config } from "../../core/config.ts";
import { createRedis } from "../../core/redis.ts";

export interface RequestedSync {
  repoUrl: string;
  /** The job that will sync it: ours, or the poke already waiting that ours collapsed into. */
  jobId: string;
  /** False when a poke of the repository was already waiting (deduplicated). */
  added: boolean;
}

const CONNECT_TIMEOUT_MS = 5_000;

/** Enqueues one sync per repository URL; rejects (naming Redis, never its password) when Redis does not take them. */
export async function requestSyncs(config: Config, repoUrls: readonly string[]): Promise<RequestedSync[]> {
  if (repoUrls.length === 0) return [];
  // Producer connection: no offline queue, so an unreachable Redis fails
  // within the timeout instead of holding the command forever.
  const redis = createRedis(config.redis, "producer", { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy: () => null });
  try {
    await redis.connect();
    const queues = openQueues(redis, config.redis.prefix);
    try {
      const requested: RequestedSync[] = [];
      for (const repoUrl of repoUrls) {
        const request = hgSyncJobRequest({ kind: "reconcile", repoUrl });
        const job = await addJob(queues, request);
        const jobId = String(job.id ?? request.opts.jobId);
        requested.push({ repoUrl, jobId, added: jobId === request.opts.jobId });
      }
      return requested;
    } finally {
      await closeQueues(queues).catch(() => {});
    }
  } finally {
    redis.disconnect();
  }
}
