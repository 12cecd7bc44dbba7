/**
 * A Taskcluster task (its definition and status, as the Queue API answers
 * them) → the tc-ingest jobs the live flow would have made of its runs.
 *
 * The live flow binds task-completed and task-failed with `route.<TC_ROUTE>`,
 * so only tasks carrying that route and only their completed or failed runs
 * are taken (an exception run, a worker shut down or a task cancelled, has no
 * message we receive). Each run is rebuilt as the message Taskcluster
 * published for it (body, exchange, primary routing key, CC routes) and goes
 * through the bridge's own `routeMessage`: the same job id
 * (`tc|<host>|<task>|<run>`) and payload as from Pulse, so a backfill that
 * overlaps live messages, or an earlier backfill, adds nothing.
 */
import type { JobRequest } from "../contract/contracts.ts";
import type { Config, PulseFeed } from "../core/config.ts";
import { routeMessage } from "../routing/route-message.ts";
import type { TaskDefinition, TaskStatus } from "./queue-api-reader.ts";

/** Header that marks a job's original message as rebuilt by backfill (not received from Pulse). */
export const BACKFILL_HEADER = "x-pulse-bridge-backfill";

export interface RunJob {
  taskId: string;
  runId: number;
  state: string;
  job: JobRequest<"tc-ingest">;
}

export interface SkippedRun {
  taskId: string;
  runId?: number;
  reason: string;
}

export interface TaskRuns {
  /** Whether the task carries TC_ROUTE (if not: no jobs, one skipped entry for the task). */
  routed: boolean;
  jobs: RunJob[];
  skipped: SkippedRun[];
}

const INGESTED_STATES = new Set(["completed", "failed"]);

/** Whether the task's definition carries TC_ROUTE (Pulse CCs its messages to `route.<route>`). */
export function carriesRoute(task: TaskDefinition, tcRoute: string): boolean {
  return task.routes.includes(tcRoute);
}

/**
 * The jobs of the task's resolved runs (or only of `onlyRun`). `command`
 * names what rebuilt the message, for inspection (job data shows it).
 */
export function taskRunJobs(
  config: Config,
  feed: PulseFeed,
  status: TaskStatus,
  task: TaskDefinition,
  options: { onlyRun?: number; command: string },
): TaskRuns {
  const { taskId } = status;
  if (!carriesRoute(task, config.pulse.tcRoute))
    return { routed: false, jobs: [], skipped: [{ taskId, reason: `does not carry the route ${config.pulse.tcRoute}` }] };
  const runs = options.onlyRun === undefined ? status.runs : status.runs.filter((r) => r.runId === options.onlyRun);
  if (options.onlyRun !== undefined && runs.length === 0)
    return { routed: true, jobs: [], skipped: [{ taskId, runId: options.onlyRun, reason: "has no such run" }] };
  const result: TaskRuns = { routed: true, jobs: [], skipped: [] };
  for (const run of runs) {
    if (!INGESTED_STATES.has(run.state)) {
      const reason = run.state === "exception" ? "ended in exception (only completed and failed runs are ingested)" : `is ${run.state}, not resolved yet`;
      result.skipped.push({ taskId, runId: run.runId, reason });
      continue;
    }
    const decision = routeMessage(
      {
        feed,
        exchange: run.state === "completed" ? config.pulse.exchanges.taskCompleted : config.pulse.exchanges.taskFailed,
        routingKey: primaryRoutingKey(status, run),
        content: Buffer.from(JSON.stringify(messageBody(status, task, run))),
        headers: { CC: task.routes.map((route) => `route.${route}`), [BACKFILL_HEADER]: options.command },
        redelivered: false,
      },
      config,
    );
    if (decision.action === "enqueue" && decision.job.queue === "tc-ingest")
      result.jobs.push({ taskId, runId: run.runId, state: run.state, job: decision.job });
    else result.skipped.push({ taskId, runId: run.runId, reason: decision.action === "dead-letter" ? decision.job.data.reason : "not a tc-ingest job" });
  }
  return result;
}

type Run = TaskStatus["runs"][number];

/**
 * The body of task-completed / task-failed (queue's exchanges.js): the status
 * as it was when the run resolved (the runs up to it), the run id, the
 * task's tags, and the worker that ran it.
 */
function messageBody(status: TaskStatus, task: TaskDefinition, run: Run) {
  return {
    status: { ...status, state: run.state, runs: status.runs.filter((r) => r.runId <= run.runId) },
    runId: run.runId,
    task: { tags: task.tags },
    workerGroup: run.workerGroup ?? "",
    workerId: run.workerId ?? "",
    version: 1,
  };
}

/** `primary.<taskId>.<runId>.<workerGroup>.<workerId>.<provisionerId>.<workerType>.<schedulerId>.<taskGroupId>._` */
function primaryRoutingKey(status: TaskStatus, run: Run): string {
  const part = (value: string | undefined) => (value ? value : "_");
  return [
    "primary",
    status.taskId,
    run.runId,
    part(run.workerGroup),
    part(run.workerId),
    part(status.provisionerId),
    part(status.workerType),
    part(status.schedulerId),
    status.taskGroupId,
    "_",
  ].join(".");
}
