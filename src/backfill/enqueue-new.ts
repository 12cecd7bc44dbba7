/**
 * Adds the job requests BullMQ does not hold yet, and says for each whether
 * it was added or already there (with its state). The deterministic job ids
 * make the add itself idempotent (BullMQ ignores an id it holds); the look
 * first is for the report, and for `--dry-run`, which adds nothing.
 */
import type { AnyJobRequest } from "../contract/contracts.ts";
import { addJob, type Queues } from "../contract/queues.ts";

export interface EnqueueOutcome {
  jobId: string;
  /** added; would-add (dry run); exists: BullMQ holds the id already (a live message or an earlier backfill). */
  outcome: "added" | "would-add" | "exists";
  /** The existing job's state (waiting, active, completed, failed, ...). */
  state?: string;
}

export async function enqueueNew(queues: Queues, requests: readonly AnyJobRequest[], dryRun: boolean): Promise<EnqueueOutcome[]> {
  const states = await Promise.all(requests.map((request) => queues[request.queue].getJobState(request.opts.jobId)));
  const outcomes: EnqueueOutcome[] = [];
  for (const [index, request] of requests.entries()) {
    const jobId = request.opts.jobId;
    const state = states[index]!;
    if (state !== "unknown") outcomes.push({ jobId, outcome: "exists", state });
    else if (dryRun) outcomes.push({ jobId, outcome: "would-add" });
    else {
      await addJob(queues, request);
      outcomes.push({ jobId, outcome: "added" });
    }
  }
  return outcomes;
}
