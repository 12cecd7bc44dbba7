import { type Command, InvalidArgumentError, Option } from "commander";
import { QUEUE_NAMES, type QueueName } from "../contract/contracts.ts";
import type { ReplayableState } from "../replay/failed-jobs.ts";
import { positiveInteger } from "./argument-parsers.ts";
import type { CliContext } from "./context.ts";

function isoDate(value: string): Date {
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime()))
    throw new InvalidArgumentError("must be an ISO date or time, e.g. 2026-11-23 or 2026-11-23T10:00:00Z");
  return date;
}

interface ReplayOptions {
  queue?: QueueName;
  state: ReplayableState;
  since?: Date;
  until?: Date;
  limit?: number;
  dryRun?: boolean;
  deadLetter?: boolean;
  poison?: boolean;
  id?: string;
  json?: boolean;
}

export function registerReplay(program: Command, context: CliContext): void {
  program
    .command("replay")
    .description(
      "re-run failed jobs in bulk (--queue), re-submit dead letters through the bridge's routing (--dead-letter), or empty the Pulse poison queues through it (--poison); idempotent",
    )
    .addOption(new Option("--queue <queue>", "queue whose finished jobs to re-run").choices(QUEUE_NAMES.filter((q) => q !== "dead-letter")))
    .addOption(new Option("--state <state>", "which finished jobs").choices(["failed", "completed"]).default("failed"))
    .option("--since <iso>", "only jobs finished at or after this time", isoDate)
    .option("--until <iso>", "only jobs finished before this time", isoDate)
    .option("--limit <n>", "at most this many jobs (newest first)", positiveInteger)
    .option("--dead-letter", "re-submit dead letters instead (after a fix)")
    .option("--id <id>", "with --dead-letter: only this dead letter")
    .option("--poison", "route the messages of the Pulse poison queues (over the delivery limit) into jobs or dead letters")
    .option("--dry-run", "show what would be done, change nothing")
    .option("--json", "print the summary as JSON")
    .action(async (options: ReplayOptions) => {
      if ([options.deadLetter, options.queue, options.poison].filter(Boolean).length !== 1)
        throw new Error("give one of --queue <queue>, --dead-letter or --poison");
      if (options.id && !options.deadLetter) throw new Error("--id goes with --dead-letter");
      const config = await context.config();
      const [{ createRedis }, { closeQueues, openQueues }] = await Promise.all([import("../core/redis.ts"), import("../contract/queues.ts")]);
      const redis = createRedis(config.redis, "worker");
      const queues = openQueues(redis, config.redis.prefix);
      try {
        if (options.poison) {
          const [{ replayPoison }, { durableHandOff }, { createLogger }] = await Promise.all([
            import("../replay/poison-queue.ts"),
            import("../core/redis-durability.ts"),
            import("../core/log.ts"),
          ]);
          // Each message leaves the poison queue once Redis has its job, as REDIS_DURABILITY means it.
          const afterAdd = await durableHandOff(redis, config.redis, config.redis.durability, createLogger(config.logLevel, "replay"));
          const summary = await replayPoison(config, queues, { dryRun: Boolean(options.dryRun), ...(afterAdd ? { afterAdd } : {}) });
          if (options.json) return void console.log(JSON.stringify(summary, null, 2));
          for (const o of summary.outcomes) {
            const dropped = o.droppedHeaders.length ? `; headers dropped: ${o.droppedHeaders.join(", ")}` : "";
            console.log(`${o.queue} (from ${o.from || "?"}, ${o.reason}): ${o.outcome} (${o.detail}${dropped})`);
          }
          for (const q of summary.queues) {
            const counts = summary.outcomes.filter((o) => o.queue === q.queue);
            const count = (outcome: string) => counts.filter((o) => o.outcome === outcome).length;
            console.log(
              q.missing
                ? `${q.queue}: does not exist (no bridge has connected with this configuration)`
                : `${q.queue}: ${q.messages} examined, ${count("enqueued")} ${summary.dryRun ? "would be " : ""}enqueued, ${count("dead-lettered")} ${summary.dryRun ? "would be " : ""}dead-lettered, ${count("ignored")} ignored, ${count("unroutable") + count("failed")} kept${summary.dryRun ? " [dry run: all kept]" : ""}`,
            );
          }
          return;
        }
        if (options.deadLetter) {
          const { replayDeadLetters } = await import("../replay/dead-letters.ts");
          const summary = await replayDeadLetters(config, queues, {
            ...(options.id ? { id: options.id } : {}),
            ...(options.limit ? { limit: options.limit } : {}),
            dryRun: Boolean(options.dryRun),
          });
          if (options.json) return void console.log(JSON.stringify(summary, null, 2));
          const verb = summary.dryRun ? "would be " : "";
          for (const o of summary.outcomes) console.log(`${o.id}: ${o.outcome} (${o.detail})`);
          console.log(
            `dead letters: ${summary.examined} examined, ${summary.enqueued} ${verb}enqueued, ${summary.ignored} ${verb}ignored (removed), ${summary.stillInvalid} still invalid (kept)${summary.dryRun ? " [dry run]" : ""}`,
          );
          return;
        }
        const { replayFinishedJobs } = await import("../replay/failed-jobs.ts");
        const summary = await replayFinishedJobs(queues, {
          queue: options.queue!,
          state: options.state,
          ...(options.since ? { since: options.since } : {}),
          ...(options.until ? { until: options.until } : {}),
          ...(options.limit ? { limit: options.limit } : {}),
          dryRun: Boolean(options.dryRun),
        });
        if (options.json) return void console.log(JSON.stringify(summary, null, 2));
        if (summary.dryRun) for (const id of summary.jobIds) console.log(`would replay ${id}`);
        for (const skip of summary.skipped) console.log(`skipped ${skip.id}: ${skip.reason}`);
        console.log(
          `${summary.queue}: ${summary.matched} ${summary.state} job(s) matched, ${summary.dryRun ? "0 replayed [dry run]" : `${summary.replayed} replayed, ${summary.skipped.length} skipped`}`,
        );
      } finally {
        await closeQueues(queues).catch(() => {});
        await redis.quit().catch(() => redis.disconnect());
      }
    });
}
