/**
 * Runs a pool: a BullMQ Worker on the pool's queue with the shared
 * connections, metrics, and ordered shutdown (stop taking jobs, let the
 * active ones finish, then close the runtime's resources).
 */
import { hostname } from "node:os";
import { type Job, UnrecoverableError, Worker } from "bullmq";
import type { JobPayloads, QueueName } from "../contract/contracts.ts";
import { closeQueues, openQueues } from "../contract/queues.ts";
import type { Config } from "../core/config.ts";
import type { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";
import { jobDuration, jobOutcomes } from "../core/metrics.ts";
import { PermanentError } from "../core/permanent-error.ts";
import { createRedis } from "../core/redis.ts";
import { spanInJob } from "../core/tracing.ts";
import { type Database, openDatabase } from "../storage/prisma.ts";
import { startJobHistory } from "./job-history.ts";
import type { PoolDefinition } from "./pool.ts";

export interface StartPoolOptions {
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
  concurrency?: number;
  /** Share a database client with other roles of the same process (start). */
  db?: Database;
  /** How often job history sweeps the finished sets (default 10 s). */
  historySweepIntervalMs?: number;
}

export async function startPool<Q extends QueueName>(definition: PoolDefinition<Q>, options: StartPoolOptions): Promise<Worker<JobPayloads[Q]>> {
  const { config, lifecycle } = options;
  const log = options.log.child({ pool: definition.queue });
  const concurrency = options.concurrency ?? definition.defaultConcurrency(config);
  const workerName = `${hostname()}:${process.pid}`;

  const redis = createRedis(config.redis, "worker");
  redis.on("error", (error) => log.warn({ err: error.message }, "redis connection error"));
  lifecycle.defer("redis", () => redis.quit().catch(() => redis.disconnect()));
  const db = options.db ?? openDatabase(config.database);
  if (!options.db) lifecycle.defer("database", () => db.$disconnect());
  const queues = openQueues(redis, config.redis.prefix);
  lifecycle.defer("queues", () => closeQueues(queues));

  const runtime = await definition.create({ config, log, db, redis, queues, workerName });
  lifecycle.defer(`${definition.queue} runtime`, () => runtime.close?.());

  // BullMQ does not close a connection it was handed; released after the worker.
  const workerConnection = createRedis(config.redis, "worker");
  lifecycle.defer("worker redis", () => workerConnection.quit().catch(() => workerConnection.disconnect()));
  const worker = new Worker<JobPayloads[Q]>(
    definition.queue,
    async (job: Job<JobPayloads[Q]>, token?: string) => {
      const started = process.hrtime.bigint();
      try {
        // Continues the trace of the message the job came from (its context is in the job's options).
        const result = await spanInJob(`job ${definition.queue}`, job.opts.telemetry?.metadata, jobAttributes(job), () => runtime.process(job, token));
        record(definition.queue, "completed", started);
        return result;
      } catch (error) {
        record(definition.queue, (error as Error)?.name === "DelayedError" ? "delayed" : "failed", started);
        throw error instanceof PermanentError ? unrecoverable(error) : error;
      }
    },
    {
      connection: workerConnection,
      prefix: config.redis.prefix,
      concurrency,
      name: workerName,
      ...(definition.lockDurationMs ? { lockDuration: definition.lockDurationMs } : {}),
      ...(definition.stalledIntervalMs ? { stalledInterval: definition.stalledIntervalMs } : {}),
    },
  );
  worker.on("error", (error) => log.warn({ err: error.message }, "worker error"));
  worker.on("failed", (job, error) => log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: error.message }, "job attempt failed"));
  worker.on("completed", (job) => log.info({ jobId: job.id, name: job.name }, "job completed"));
  // Every outcome also goes to PostgreSQL (JobRecord); released after the
  // worker so that the last outcomes are swept in.
  const history = await startJobHistory({
    queueName: definition.queue,
    queue: queues[definition.queue],
    worker,
    db,
    redis: config.redis,
    prefix: config.redis.prefix,
    log,
    ...(options.historySweepIntervalMs ? { sweepIntervalMs: options.historySweepIntervalMs } : {}),
  });
  lifecycle.defer(`${definition.queue} job history`, () => history.close());
  // Registered last, so it is released first: stop taking jobs and let the
  // active ones finish before the runtime and connections go.
  lifecycle.defer(`${definition.queue} worker`, () => worker.close());
  await worker.waitUntilReady();
  await runtime.started?.();
  log.info({ concurrency, worker: workerName }, "worker pool started");
  return worker;
}

/** What the job span says about its job (the routing key of the message it came from, if any). */
function jobAttributes(job: Job): Record<string, string | number> {
  const routingKey = (job.data as { message?: { routingKey?: unknown } }).message?.routingKey;
  return {
    "bullmq.queue.name": job.queueName,
    "bullmq.job.id": job.id ?? "",
    "bullmq.job.name": job.name,
    "bullmq.job.attempts.made": job.attemptsMade,
    ...(typeof routingKey === "string" ? { "messaging.rabbitmq.destination.routing_key": routingKey } : {}),
  };
}

/** BullMQ fails a job at once, whatever attempts remain, only for its own UnrecoverableError. */
function unrecoverable(error: PermanentError): UnrecoverableError {
  const converted = new UnrecoverableError(error.message);
  converted.stack = error.stack;
  return converted;
}

function record(queue: string, outcome: string, started: bigint): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  jobDuration.observe({ queue, outcome }, seconds);
  jobOutcomes.inc({ queue, outcome });
}
