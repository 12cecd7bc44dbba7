/**
 * `replay --queue Q --state failed`: re-runs finished jobs in bulk, newest
 * first, filtered by when they finished. A retried job leaves the failed set,
 * so a second replay finds nothing to do: replay is idempotent, and BullMQ
 * keeps one job per id, so it never duplicates work. BullMQ's attempt counter
 * is not reset: a replayed job whose attempts were exhausted gets one more
 * attempt (and its JobRecord rows keep distinct attempt numbers).
 */
import type { Job } from "bullmq";
import type { QueueName } from "../contract/contracts.ts";
import type { Queues } from "../contract/queues.ts";

export type ReplayableState = "failed" | "completed";

export interface ReplayFailedOptions {
  queue: QueueName;
  state: ReplayableState;
  /** Only jobs that finished at or after this time. */
  since?: Date;
  /** Only jobs that finished before this time. */
  until?: Date;
  limit?: number;
  dryRun?: boolean;
}

export interface ReplaySummary {
  queue: QueueName;
  state: ReplayableState;
  dryRun: boolean;
  /** Jobs that matched the filters. */
  matched: number;
  /** Jobs moved back to waiting (0 on a dry run). */
  replayed: number;
  /** Jobs that changed state meanwhile (retried by someone else, removed). */
  skipped: Array<{ id: string; reason: string }>;
  jobIds: string[];
}

const PAGE = 200;

export async function replayFinishedJobs(queues: Queues, options: ReplayFailedOptions): Promise<ReplaySummary> {
  const queue = queues[options.queue];
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const matches: Job[] = [];
  // Pages are read before anything is retried: retrying shrinks the set under the cursor.
  for (let start = 0; matches.length < limit; start += PAGE) {
    const page = (await queue.getJobs([options.state], start, start + PAGE - 1, false)) as Job[];
    for (const job of page) {
      if (!job?.id || matches.length >= limit) continue;
      const finished = job.finishedOn ?? job.timestamp;
      if (options.since && finished < options.since.getTime()) continue;
      if (options.until && finished >= options.until.getTime()) continue;
      matches.push(job);
    }
    if (page.length < PAGE) break;
    // Newest first: once a whole page is older than `since`, the rest is too.
    if (options.since && page.every((job) => (job.finishedOn ?? job.timestamp) < options.since!.getTime())) break;
  }

  const summary: ReplaySummary = {
    queue: options.queue,
    state: options.state,
    dryRun: Boolean(options.dryRun),
    matched: matches.length,
    replayed: 0,
    skipped: [],
    jobIds: matches.map((job) => job.id!),
  };
  if (options.dryRun) return summary;
  for (const job of matches) {
    try {
      await job.retry(options.state);
      summary.replayed++;
    } catch (error) {
      summary.skipped.push({ id: job.id!, reason: (error as Error).message.split("\n")[0]!.slice(0, 200) });
    }
  }
  return summary;
}
