/**
 * A worker pool: one BullMQ queue and the processor that carries its jobs out.
 * `pulse-bridge worker <pool>` and `start` run pools through startPool().
 */
import type { Job } from "bullmq";
import type { JobPayloads, QueueName } from "../contract/contracts.ts";
import type { Queues } from "../contract/queues.ts";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import type { RedisClient } from "../core/redis.ts";
import type { Database } from "../storage/prisma.ts";

export interface PoolContext {
  config: Config;
  log: Logger;
  db: Database;
  /** A non-blocking connection for locks and adds (not the worker's blocking one). */
  redis: RedisClient;
  queues: Queues;
  /** Stable name of this worker process, e.g. `<host>:<pid>`. */
  workerName: string;
}

export interface PoolRuntime<Q extends QueueName> {
  /** Carries out one job; `token` is the BullMQ lock token (for moveToDelayed). */
  process(job: Job<JobPayloads[Q]>, token: string | undefined): Promise<unknown>;
  /** Called once the worker is running (e.g. to schedule repeatable jobs). */
  started?(): Promise<void>;
  /** Releases what create() opened; called after the worker has stopped. */
  close?(): Promise<void>;
}

export interface PoolDefinition<Q extends QueueName> {
  queue: Q;
  defaultConcurrency(config: Config): number;
  /** BullMQ lock duration; long jobs (clones) renew it automatically. */
  lockDurationMs?: number;
  /**
   * How often BullMQ looks for jobs whose worker died (lock expired) and hands
   * them to another worker; default 30 s.
   */
  stalledIntervalMs?: number;
  create(context: PoolContext): Promise<PoolRuntime<Q>>;
}
