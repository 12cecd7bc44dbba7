/**
 * `pulse-bridge ingest task|task-group|pushes`: backfill what the live flow
 * missed (src/backfill/), with the live flow's job ids, so nothing is stored
 * twice. `--dry-run` says what would be enqueued and enqueues nothing.
 */
import { type Command, InvalidArgumentError } from "commander";
import type { Config } from "../core/config.ts";
import { positiveInteger } from "./argument-parsers.ts";
import type { CliContext } from "./context.ts";

function runNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n > 1000) throw new InvalidArgumentError("must be a run id, a whole number from 0 to 1000");
  return n;
}

/** The contract's queues on a producer connection that fails fast when Redis does not answer. */
async function withQueues<T>(config: Config, work: (queues: import("../contract/queues.ts").Queues) => Promise<T>): Promise<T> {
  const [{ createRedis }, { closeQueues, openQueues }] = await Promise.all([import("../core/redis.ts"), import("../contract/queues.ts")]);
  const redis = createRedis(config.redis, "producer", { lazyConnect: true, connectTimeout: 5_000, retryStrategy: () => null });
  try {
    await redis.connect().catch(async (error: Error) => {
      const { redactText } = await import("../core/redact.ts");
      throw new Error(`Redis does not answer (${redactText(error.message)}): nothing enqueued`);
    });
    const queues = openQueues(redis, config.redis.prefix);
    try {
      return await work(queues);
    } finally {
      await closeQueues(queues).catch(() => {});
    }
  } finally {
    redis.disconnect();
  }
}

type TaskSummary = import("../backfill/tasks.ts").TaskBackfillSummary;

function taskLines(summary: TaskSummary): string[] {
  const lines: string[] = [];
  for (const run of summary.runs) {
    const what = `task ${run.taskId} run ${run.runId} (${run.runState})`;
    if (run.outcome === "added") lines.push(`${what}: enqueued job ${run.jobId}`);
    else if (run.outcome === "would-add") lines.push(`${what}: would enqueue job ${run.jobId}`);
    else lines.push(`${what}: job ${run.jobId} is already there (${run.state})`);
  }
  for (const skip of summary.skipped) lines.push(`task ${skip.taskId}${skip.runId === undefined ? "" : ` run ${skip.runId}`}: skipped, ${skip.reason}`);
  return lines;
}

function taskTotals(summary: TaskSummary, what: string): string {
  const added = summary.dryRun ? `${summary.wouldAdd} would be enqueued` : `${summary.added} enqueued`;
  return `${what} on ${summary.source} (${summary.rootUrl}): ${summary.runs.length} run(s) to ingest, ${added}, ${summary.existing} already there${summary.dryRun ? " [dry run: nothing enqueued]" : ""}`;
}

export function registerIngest(program: Command, context: CliContext): void {
  const ingest = program
    .command("ingest")
    .description("backfill what the live flow missed: Taskcluster runs by task or task group, hg pushes by pushlog range (same job ids: nothing twice)");

  ingest
    .command("task")
    .description("enqueue the tc-ingest jobs of one task's completed and failed runs (the task must carry TC_ROUTE)")
    .argument("<taskId>", "Taskcluster task id")
    .option("--run <n>", "only this run", runNumber)
    .option("--source <name>", "the deployment: a TC_EXTRA_SOURCES name (default: TASKCLUSTER_ROOT_URL's, named pulse)")
    .option("--dry-run", "say what would be enqueued, enqueue nothing")
    .option("--json", "print the result as JSON")
    .action(async (taskId: string, options: { run?: number; source?: string; dryRun?: boolean; json?: boolean }) => {
      const config = await context.config();
      const { backfillTask } = await import("../backfill/tasks.ts");
      const summary = await withQueues(config, (queues) =>
        backfillTask({ config, queues }, taskId, {
          ...(options.run === undefined ? {} : { run: options.run }),
          ...(options.source === undefined ? {} : { source: options.source }),
          dryRun: Boolean(options.dryRun),
        }),
      );
      if (summary.runs.length === 0) {
        const skip = summary.skipped[0];
        throw new Error(
          skip
            ? `task ${taskId}${skip.runId === undefined ? "" : ` run ${skip.runId}`} ${skip.reason}: nothing enqueued`
            : `task ${taskId} has no resolved run: nothing enqueued`,
        );
      }
      if (options.json) return void console.log(JSON.stringify(summary, null, 2));
      console.log([...taskLines(summary), taskTotals(summary, `task ${taskId}`)].join("\n"));
    });

  ingest
    .command("task-group")
    .description("list a task group through the Queue API (in pages) and enqueue a tc-ingest job per completed or failed run of its tasks carrying TC_ROUTE")
    .argument("<taskGroupId>", "Taskcluster task group id (a decision task's id)")
    .option("--source <name>", "the deployment: a TC_EXTRA_SOURCES name (default: TASKCLUSTER_ROOT_URL's, named pulse)")
    .option("--dry-run", "say what would be enqueued, enqueue nothing")
    .option("--json", "print the result as JSON")
    .action(async (taskGroupId: string, options: { source?: string; dryRun?: boolean; json?: boolean }) => {
      const config = await context.config();
      const { backfillTaskGroup } = await import("../backfill/tasks.ts");
      const summary = await withQueues(config, (queues) =>
        backfillTaskGroup({ config, queues }, taskGroupId, {
          ...(options.source === undefined ? {} : { source: options.source }),
          dryRun: Boolean(options.dryRun),
          onPage: (p) =>
            process.stderr.write(
              `task group ${taskGroupId}: page ${p.page}, ${p.tasksListed} task(s) listed, ${p.tasksRouted} with route ${config.pulse.tcRoute}, ${options.dryRun ? `${p.wouldAdd} would be enqueued` : `${p.added} enqueued`}, ${p.existing} already there\n`,
            ),
        }),
      );
      if (options.json) return void console.log(JSON.stringify(summary, null, 2));
      console.log(
        [
          ...(summary.tasksListed === 0 ? ["the Queue API lists no task in this group: check its id and --source"] : []),
          ...taskLines(summary),
          taskTotals(summary, `task group ${taskGroupId}: ${summary.tasksListed} task(s) listed, ${summary.tasksRouted} with route ${config.pulse.tcRoute}`),
        ].join("\n"),
      );
    });

  ingest
    .command("pushes")
    .description("re-read a pushlog range of a tracked hg repository and store the pushes missing from the database (one hg-sync job)")
    .argument("<repository>", "the repository's URL or name, e.g. https://hg.mozilla.org/l10n-central/de or l10n-central/de")
    .option("--from <id>", "first push id (default 1)", positiveInteger)
    .option("--to <id>", "last push id (default: the pushlog's last)", positiveInteger)
    .option("--dry-run", "say what would be enqueued, enqueue nothing")
    .option("--json", "print the result as JSON")
    .action(async (repository: string, options: { from?: number; to?: number; dryRun?: boolean; json?: boolean }) => {
      if (options.from !== undefined && options.to !== undefined && options.from > options.to) throw new Error("--from must not be above --to");
      const config = await context.config();
      const [{ openDatabase }, { backfillPushes }] = await Promise.all([import("../storage/prisma.ts"), import("../backfill/pushes.ts")]);
      const db = openDatabase(config.database, { atMost: 2 });
      let summary: import("../backfill/pushes.ts").PushesBackfillSummary;
      try {
        summary = await withQueues(config, (queues) =>
          backfillPushes({ config, queues, db }, repository, {
            ...(options.from === undefined ? {} : { from: options.from }),
            ...(options.to === undefined ? {} : { to: options.to }),
            dryRun: Boolean(options.dryRun),
          }),
        );
      } finally {
        await db.$disconnect();
      }
      if (options.json) return void console.log(JSON.stringify(summary, null, 2));
      const { repository: repo, job } = summary;
      const lines = [
        `${repo.name}: pushlog at push ${summary.pushlogLastPushId}, database at ${repo.lastPushId}; pushes ${summary.from}-${summary.to}: ${summary.stored} stored, ${summary.missing} missing${summary.missing ? ` (${summary.missingIds})` : ""}`,
      ];
      if (options.to !== undefined && options.to > summary.to)
        lines.push(`--to ${options.to} is beyond the pushlog's last push (${summary.pushlogLastPushId})`);
      if (!job) lines.push("nothing missing: nothing enqueued");
      else if (job.outcome === "added") lines.push(`enqueued job ${job.jobId}: the next free hg-sync worker stores pushes ${job.fromPushId}-${job.toPushId}`);
      else if (job.outcome === "would-add") lines.push(`would enqueue job ${job.jobId} (pushes ${job.fromPushId}-${job.toPushId}) [dry run: nothing enqueued]`);
      else
        lines.push(
          `job ${job.jobId} is already there (state ${job.state}): ${job.state === "completed" ? "it ran and these pushes are still missing, so the pushlog does not list them" : "it stores them when it runs"}`,
        );
      console.log(lines.join("\n"));
    });
}
