/**
 * Job history (README, "History"): every job outcome is copied into
 * PostgreSQL (`JobRecord`) so it outlives Redis retention and can be queried.
 *
 * States recorded, one row per (queue, jobId, attempts, state):
 * - `completed`: the attempt numbered `attempts` succeeded;
 * - `retrying`: the attempt failed and BullMQ scheduled another one;
 * - `failed`: the job failed for good (attempts exhausted, or a permanent error);
 * - `stalled`: the worker running the attempt lost its lock (crashed, or its
 *   event loop was blocked); BullMQ runs the job again.
 *
 * Three paths feed it, so a crash cannot make an outcome disappear:
 * 1. the worker's own `completed`/`failed` events (immediate, every attempt);
 * 2. a QueueEvents listener for `stalled` (only another process can see that
 *    a worker died mid-job);
 * 3. a sweeper that walks the queue's finished sets (`completed`, `failed`)
 *    every few seconds and inserts whatever final outcome is missing: a worker
 *    killed between BullMQ's move and our insert, a database that was briefly
 *    unreachable, jobs failed by another process's stalled checker.
 * Inserts skip duplicates on the unique key, so the paths may overlap freely.
 * What only path 1 can see (a `retrying` attempt) is lost if the database is
 * down at that moment; the final outcome never is, as long as Redis keeps the
 * finished job longer than one sweep interval (retention is days).
 */
import { type Job, type Queue, QueueEvents, type Worker } from "bullmq";
import type { QueueName } from "../contract/contracts.ts";
import type { Logger } from "../core/log.ts";
import { createRedis, type RedisClient, type RedisConnection } from "../core/redis.ts";
import type { Database } from "../storage/prisma.ts";

type JobRecordState = "completed" | "retrying" | "failed" | "stalled";

/** What BullMQ keeps of a job that we need (Job and the getters' JobBase both fit). */
interface FinishedJobView {
  id?: string | undefined;
  name: string;
  attemptsMade: number;
  attemptsStarted?: number;
  failedReason?: string;
  timestamp: number;
  processedOn?: number | undefined;
  finishedOn?: number | undefined;
}

const MAX_ERROR_LENGTH = 4_000;

interface JobRecordRow {
  queue: string;
  jobId: string;
  name: string;
  state: JobRecordState;
  attempts: number;
  error: string | null;
  enqueuedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
}

/** The row describing `job` in `state`; `now` stands in for timings BullMQ only sets on final outcomes. */
function jobRecordRow(queue: string, job: FinishedJobView, state: JobRecordState, now = Date.now()): JobRecordRow | undefined {
  if (!job.id) return undefined;
  const startedAt = job.processedOn ? new Date(job.processedOn) : null;
  const finishedMs = state === "stalled" ? null : (job.finishedOn ?? now);
  return {
    queue,
    jobId: job.id,
    name: job.name,
    state,
    // A stalled attempt was started but never finished: number it by its start.
    attempts: state === "stalled" ? Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1) : job.attemptsMade,
    error:
      state === "completed"
        ? null
        : ((job.failedReason ?? (state === "stalled" ? "worker lost the job's lock (stalled)" : null))?.slice(0, MAX_ERROR_LENGTH) ?? null),
    enqueuedAt: job.timestamp ? new Date(job.timestamp) : null,
    startedAt,
    finishedAt: finishedMs === null ? null : new Date(finishedMs),
    durationMs: startedAt && finishedMs !== null ? Math.max(0, finishedMs - startedAt.getTime()) : null,
  };
}

/** Inserts rows, ignoring those already recorded (the unique key makes every path idempotent). */
async function insertJobRecords(db: Database, rows: Array<JobRecordRow | undefined>): Promise<number> {
  const present = rows.filter((row): row is JobRecordRow => row !== undefined);
  if (present.length === 0) return 0;
  const result = await db.jobRecord.createMany({ data: present, skipDuplicates: true });
  return result.count;
}

/**
 * The ids of `finished` (job id → finishedOn, ms) that have no `state` row
 * finished at that time: outcomes no path has recorded yet. Compared in SQL
 * (`finishedAt` is a UTC timestamp(3): exact in milliseconds), so only the
 * missing ids come back.
 */
export async function unrecordedOutcomes(db: Database, queue: string, state: JobRecordState, finished: Map<string, number>): Promise<string[]> {
  if (finished.size === 0) return [];
  const rows = await db.$queryRaw<Array<{ jobId: string }>>`
    SELECT f."jobId" FROM unnest(${[...finished.keys()]}::text[], ${[...finished.values()]}::bigint[]) AS f("jobId", "finishedOn")
    WHERE NOT EXISTS (
      SELECT 1 FROM "JobRecord" AS r
      WHERE r."queue" = ${queue} AND r."jobId" = f."jobId" AND r."state" = ${state}
        AND r."finishedAt" = 'epoch'::timestamp + f."finishedOn" * interval '1 millisecond')`;
  return rows.map((row) => row.jobId);
}

/** A worker's failed job is final when BullMQ stamped finishedOn for this attempt. */
function failedState(job: Job): JobRecordState {
  return job.finishedOn && (!job.processedOn || job.finishedOn >= job.processedOn) ? "failed" : "retrying";
}

export interface JobHistoryOptions {
  queueName: QueueName;
  queue: Queue;
  // biome-ignore lint/suspicious/noExplicitAny: any pool's worker; only its events and name are used
  worker: Worker<any>;
  db: Database;
  redis: RedisConnection;
  prefix: string;
  log: Logger;
  /** How often the finished sets are swept; default 10 s. */
  sweepIntervalMs?: number;
}

export interface JobHistoryRecorder {
  /** Sweeps once now (tests, and the final sweep at shutdown). */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

const SWEEP_PAGE = 500;
/** How far back a sweep re-reads, so a job finishing while a sweep runs is not skipped. */
const SWEEP_OVERLAP_MS = 60_000;

/**
 * Hooks the three recording paths onto a running pool. Returns a handle whose
 * close() stops the sweeper and the QueueEvents connection; call it after the
 * worker has closed, so its last outcomes are swept.
 */
export async function startJobHistory(options: JobHistoryOptions): Promise<JobHistoryRecorder> {
  const { queueName, queue, worker, db, log } = options;
  const pending = new Set<Promise<unknown>>();
  const track = (promise: Promise<unknown>) => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise));
  };
  const record = (rows: Array<JobRecordRow | undefined>) =>
    track(
      insertJobRecords(db, rows).catch((error: Error) =>
        log.warn({ err: error.message, queue: queueName }, "could not record job outcome (the sweeper retries final outcomes)"),
      ),
    );

  worker.on("completed", (job) => record([jobRecordRow(queueName, job, "completed")]));
  worker.on("failed", (job) => {
    if (job) record([jobRecordRow(queueName, job, failedState(job))]);
  });

  // Stalls are detected by whichever worker runs the stalled checker, maybe
  // in another process: listen on the queue's event stream.
  const eventsConnection: RedisClient = createRedis(options.redis, "worker");
  const events = new QueueEvents(queueName, { connection: eventsConnection, prefix: options.prefix, autorun: true });
  events.on("error", (error) => log.warn({ err: (error as Error).message }, "queue events error"));
  events.on("stalled", ({ jobId }) => {
    track(
      queue
        .getJob(jobId)
        .then((job) => (job ? insertJobRecords(db, [jobRecordRow(queueName, job, "stalled")]) : 0))
        .catch((error: Error) => log.warn({ err: error.message, jobId }, "could not record stalled job")),
    );
  });

  // The sweeper: everything finished since `since` (minus an overlap). It
  // reads only ids and finish times (the finished sets' scores) and asks
  // PostgreSQL which are recorded; only the jobs missing there are read whole.
  // Reading every finished job of the window whole (the data carries the
  // original message) and re-inserting them all made each sweep allocate tens
  // of MB on a busy queue (bench/soak.ts: ~7,000 jobs every 10 s at 90 jobs/s).
  let since = 0;
  const sweep = async (): Promise<number> => {
    const sweepStarted = Date.now();
    const client = await queue.getBackend().client;
    let inserted = 0;
    for (const state of ["completed", "failed"] as const) {
      for (let offset = 0; ; offset += SWEEP_PAGE) {
        // Newest first, [id, finishedOn, id, finishedOn, ...]: stop at the first page that reaches back past `since`.
        const page = await client.zrevrange(queue.keys[state]!, offset, offset + SWEEP_PAGE - 1, { WITHSCORES: true });
        const finished = new Map<string, number>();
        for (let i = 0; i < page.length; i += 2) {
          const finishedOn = Number(page[i + 1]);
          if (finishedOn >= since - SWEEP_OVERLAP_MS) finished.set(page[i]!, finishedOn);
        }
        const missing = await unrecordedOutcomes(db, queueName, state, finished);
        const jobs = await Promise.all(missing.map((jobId) => queue.getJob(jobId)));
        inserted += await insertJobRecords(
          db,
          jobs.map((job) => job && jobRecordRow(queueName, job, state)),
        );
        if (page.length < 2 * SWEEP_PAGE || finished.size < page.length / 2) break;
      }
    }
    since = sweepStarted;
    if (inserted > 0) log.info({ queue: queueName, inserted }, "job history sweep recorded missed outcomes");
    return inserted;
  };

  // With many worker processes, one sweep per interval is enough: whoever
  // takes this short lease sweeps, the others skip that round.
  const intervalMs = options.sweepIntervalMs ?? 10_000;
  const leaseKey = `${options.prefix}:${queueName}:job-history-sweep`;
  const leaseConnection: RedisClient = createRedis(options.redis, "producer");
  const takeLease = async () => (await leaseConnection.set(leaseKey, options.worker.name || "worker", "PX", Math.max(intervalMs - 100, 100), "NX")) === "OK";
  let sweeping: Promise<unknown> = Promise.resolve();
  const runSweep = (force = false) => {
    sweeping = sweeping
      .then(async () => (force || (await takeLease()) ? sweep() : 0))
      .catch((error: Error) => log.warn({ err: error.message, queue: queueName }, "job history sweep failed"));
    return sweeping;
  };
  const timer = setInterval(() => void runSweep(), intervalMs);
  timer.unref();
  // The first sweep of a process reads everything Redis still holds.
  void runSweep(true);
  await events.waitUntilReady();

  let closing: Promise<void> | undefined;
  return {
    sweep: async () => {
      await sweeping;
      return sweep();
    },
    close: () =>
      (closing ??= (async () => {
        clearInterval(timer);
        await Promise.allSettled([...pending]);
        await runSweep(true);
        await events.close().catch(() => {});
        await eventsConnection.quit().catch(() => eventsConnection.disconnect());
        await leaseConnection.quit().catch(() => leaseConnection.disconnect());
      })()),
  };
}
