/** The BullMQ queues of the contract (hg-sync, tc-ingest, dead-letter), opened with one shared connection. */
import { Queue, type Telemetry } from "bullmq";
import type { RedisClient } from "../core/redis.ts";
import { type AnyJobRequest, DEFAULT_JOB_OPTIONS, type JobPayloads, QUEUE_NAMES, type QueueName } from "./contracts.ts";

export type Queues = { [Q in QueueName]: Queue<JobPayloads[Q]> };

/**
 * A Queue whose add() is BullMQ's addJob(), for queues opened without
 * telemetry: add() only wraps addJob() in trace(), which without telemetry is
 * two more async frames and their promises per job (~1 µs, bench:bridge).
 */
class UntracedQueue<T> extends Queue<T> {
  override add(...args: Parameters<Queue<T>["add"]>): ReturnType<Queue<T>["add"]> {
    return this.addJob(...args);
  }
}

/** With `telemetry` (src/core/tracing.ts, queueTelemetry), each add stores the active trace context in the job's options. */
export function openQueues(connection: RedisClient, prefix: string, telemetry?: Telemetry): Queues {
  const entries = QUEUE_NAMES.map((name) => [
    name,
    telemetry
      ? new Queue(name, { connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS[name], telemetry })
      : new UntracedQueue(name, { connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS[name] }),
  ]);
  return Object.fromEntries(entries) as Queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((queue) => queue.close()));
}

/** Adds a job built by the bridge or by replay. Resolves once Redis has it. */
export function addJob(queues: Queues, request: AnyJobRequest) {
  const queue = queues[request.queue] as Queue;
  return queue.add(request.name, request.data, request.opts);
}
