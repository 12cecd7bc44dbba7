/**
 * `pulse-bridge ingest task` and `ingest task-group`: ask the Queue API of a
 * configured deployment for tasks and enqueue the tc-ingest jobs the live
 * flow would have made of their runs (task-runs.ts), each only once.
 */
import type { Queues } from "../contract/queues.ts";
import { type Config, type PulseFeed, pulseFeeds } from "../core/config.ts";
import { type EnqueueOutcome, enqueueNew } from "./enqueue-new.ts";
import { QueueApiReader, type TaskGroupMember } from "./queue-api-reader.ts";
import { type SkippedRun, taskRunJobs } from "./task-runs.ts";

export interface BackfillContext {
  config: Config;
  queues: Queues;
}

export interface RunOutcome extends EnqueueOutcome {
  taskId: string;
  runId: number;
  /** The run's state: completed or failed. */
  runState: string;
}

export interface TaskBackfillSummary {
  /** The connection name of the deployment: "pulse" (TASKCLUSTER_ROOT_URL) or a TC_EXTRA_SOURCES name. */
  source: string;
  rootUrl: string;
  dryRun: boolean;
  tasksListed: number;
  /** Tasks carrying TC_ROUTE. */
  tasksRouted: number;
  runs: RunOutcome[];
  /** Runs (of routed tasks) that are not ingested, with why; for `ingest task`, also the task itself. */
  skipped: SkippedRun[];
  added: number;
  wouldAdd: number;
  existing: number;
}

export interface TaskGroupProgress {
  page: number;
  tasksListed: number;
  tasksRouted: number;
  added: number;
  wouldAdd: number;
  existing: number;
}

/** The taskcluster feed of a source (default: the deployment on PULSE_URL); its rootUrl is a configured one. */
export function taskclusterFeed(config: Config, source?: string): PulseFeed & { rootUrl: string } {
  const feeds = pulseFeeds(config).filter((feed): feed is PulseFeed & { rootUrl: string } => feed.kind === "taskcluster" && feed.rootUrl !== undefined);
  const feed = source === undefined ? feeds[0] : feeds.find((f) => f.connection === source);
  if (!feed) {
    const names = feeds.map((f) => f.connection).join(", ");
    throw new Error(
      `no Taskcluster source named ${JSON.stringify(source)} (configured: ${names}; "pulse" is TASKCLUSTER_ROOT_URL, others come from TC_EXTRA_SOURCES)`,
    );
  }
  return feed;
}

function emptySummary(feed: PulseFeed & { rootUrl: string }, dryRun: boolean): TaskBackfillSummary {
  return { source: feed.connection, rootUrl: feed.rootUrl, dryRun, tasksListed: 0, tasksRouted: 0, runs: [], skipped: [], added: 0, wouldAdd: 0, existing: 0 };
}

/** Enqueues the jobs of some tasks into the summary. */
async function enqueueMembers(
  context: BackfillContext,
  feed: PulseFeed & { rootUrl: string },
  members: TaskGroupMember[],
  summary: TaskBackfillSummary,
  options: { onlyRun?: number; command: string; reportUnrouted: boolean },
): Promise<void> {
  const jobs = [];
  for (const { status, task } of members) {
    summary.tasksListed++;
    const runs = taskRunJobs(context.config, feed, status, task, options);
    if (!runs.routed) {
      if (options.reportUnrouted) summary.skipped.push(...runs.skipped);
      continue;
    }
    summary.tasksRouted++;
    summary.skipped.push(...runs.skipped);
    jobs.push(...runs.jobs);
  }
  const outcomes = await enqueueNew(
    context.queues,
    jobs.map((j) => j.job),
    summary.dryRun,
  );
  for (const [index, outcome] of outcomes.entries()) {
    const { taskId, runId, state } = jobs[index]!;
    summary.runs.push({ taskId, runId, runState: state, ...outcome });
    if (outcome.outcome === "added") summary.added++;
    else if (outcome.outcome === "would-add") summary.wouldAdd++;
    else summary.existing++;
  }
}

/** One task: every completed or failed run, or only `run`. */
export async function backfillTask(
  context: BackfillContext,
  taskId: string,
  options: { run?: number; source?: string; dryRun: boolean },
): Promise<TaskBackfillSummary> {
  const feed = taskclusterFeed(context.config, options.source);
  const api = new QueueApiReader(feed.rootUrl, context.config.taskcluster.requestTimeoutMs);
  const [status, task] = await Promise.all([api.status(taskId), api.task(taskId)]);
  const summary = emptySummary(feed, options.dryRun);
  const command = `ingest task ${taskId}${options.run === undefined ? "" : ` --run ${options.run}`}`;
  await enqueueMembers(context, feed, [{ status, task }], summary, {
    ...(options.run === undefined ? {} : { onlyRun: options.run }),
    command,
    reportUnrouted: true,
  });
  return summary;
}

/** Every task of the group, listed in pages; `onPage` hears after each page. */
export async function backfillTaskGroup(
  context: BackfillContext,
  taskGroupId: string,
  options: { source?: string; dryRun: boolean; onPage?: (progress: TaskGroupProgress) => void },
): Promise<TaskBackfillSummary> {
  const feed = taskclusterFeed(context.config, options.source);
  const api = new QueueApiReader(feed.rootUrl, context.config.taskcluster.requestTimeoutMs);
  const summary = emptySummary(feed, options.dryRun);
  let page = 0;
  try {
    for await (const members of api.listTaskGroup(taskGroupId)) {
      page++;
      await enqueueMembers(context, feed, members, summary, { command: `ingest task-group ${taskGroupId}`, reportUnrouted: false });
      const { tasksListed, tasksRouted, added, wouldAdd, existing } = summary;
      options.onPage?.({ page, tasksListed, tasksRouted, added, wouldAdd, existing });
    }
  } catch (error) {
    // What the pages before enqueued stays; a second run adds only the rest.
    if (page === 0) throw error;
    throw new Error(
      `${(error as Error).message} (after ${page} page(s), ${summary.tasksListed} task(s) listed and ${summary.added} job(s) enqueued: run the command again, nothing is added twice)`,
    );
  }
  return summary;
}
