/**
 * Adds the bridge's jobs to BullMQ, and holds on to them while Redis is
 * unreachable.
 *
 * Every request is added at once (many adds are in flight together, up to the
 * prefetch of each feed; ioredis pipelines them on its one connection) and
 * reports back through `done` once Redis has the job: only then may its message
 * be acked. Failures are classified once, here:
 * - transient (connection down, Redis loading/OOM/read-only...): the Enqueuer
 *   turns unhealthy and says so (the bridge stops consuming), keeps every such
 *   request and retries them all with capped exponential backoff and jitter;
 *   the first retry that succeeds makes it healthy again;
 * - permanent (BullMQ or Redis refuses this job itself while Redis answers):
 *   retrying cannot help, and a message that is never acked would block the
 *   acks of every later one on its channel, so the job is replaced by a dead
 *   letter saying why, which takes its place.
 * A request is never dropped: `done` is not called on close(), and then the
 * message stays unacked and RabbitMQ delivers it again.
 *
 * With `deadLetterRetention`, every dead letter added pokes the retention of
 * the dead-letter queue (jobs/dead-letter-retention.ts), which keeps it within
 * DEAD_LETTER_MAX_COUNT and DEAD_LETTER_MAX_AGE.
 */

import type { AnyJobRequest } from "../contract/contracts.ts";
import { deadLetterJobRequest } from "../contract/job-requests.ts";
import type { Queues } from "../contract/queues.ts";
import type { Logger } from "../core/log.ts";
import { DeadLetterRetention, type DeadLetterRetentionOptions } from "./dead-letter-retention.ts";
import type { WriteCoalescer } from "./write-coalescer.ts";

export interface EnqueuerOptions {
  queues: Queues;
  log: Logger;
  /** Whether the Redis client is connected (ioredis status "ready"): tells a refused job from an outage. */
  isConnected(): boolean;
  /** Called when Redis stops (false) or starts again (true) taking jobs. */
  onHealthChange(healthy: boolean): void;
  /** Called before each add: lets the adds of one event-loop turn share a socket write. */
  beforeSend?: WriteCoalescer;
  /**
   * Awaited after each add, before `done`: resolves once the add is as durable
   * as REDIS_DURABILITY asks (replicas:N: WAIT, redis-durability.ts); a
   * rejection counts as Redis not taking jobs.
   */
  afterAdd?: () => Promise<void>;
  retryInitialDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Bounds of the dead-letter queue, enforced after adds (and at start); none when omitted. */
  deadLetterRetention?: DeadLetterRetentionOptions & { minIntervalMs?: number };
}

/** Called once Redis has the job: `added` is what was added (a dead letter when the job was refused). */
export type EnqueueDone = (added: AnyJobRequest) => void;

interface Pending {
  request: AnyJobRequest;
  done: EnqueueDone;
}

// Redis replies that mean "not now" rather than "never" (redis.io/docs/latest/develop/reference/protocol-spec, error prefixes).
const TRANSIENT_REPLY = /^(OOM|LOADING|READONLY|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;
// ioredis' own errors when the connection is not usable; on a Cluster also
// its errors while a node is down or slots move ("Too many Cluster
// redirections. Last error: ReplyError: CLUSTERDOWN …", or "… MOVED …" to
// the dead node), which wrap the node's reply instead of starting with it.
const CONNECTION_ERROR =
  /Stream isn't writeable|Connection is closed|MaxRetriesPerRequest|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|socket|Too many Cluster redirections|None of startup nodes is available|Failed to refresh slots cache|Cluster isn't ready/i;

export class Enqueuer {
  private held: Pending[] = [];
  private inFlight = 0;
  private healthy = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAttempt = 0;
  private closed = false;
  private readonly retryInitialDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly retention: DeadLetterRetention | undefined;

  constructor(private readonly options: EnqueuerOptions) {
    this.retryInitialDelayMs = options.retryInitialDelayMs ?? 250;
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 5_000;
    const limits = options.deadLetterRetention;
    if (limits) {
      this.retention = new DeadLetterRetention(options.queues["dead-letter"], limits, options.log, limits.minIntervalMs);
      this.retention.start();
    }
  }

  /** False while Redis is not taking jobs. */
  get isHealthy(): boolean {
    return this.healthy;
  }

  /** Requests not yet confirmed by Redis (in flight or held for retry). */
  get outstanding(): number {
    return this.held.length + this.inFlight;
  }

  add(request: AnyJobRequest, done: EnqueueDone): void {
    if (this.closed) return;
    const item = { request, done };
    // While unhealthy, the retry timer sends everything held, in order.
    if (this.healthy) void this.send(item);
    else this.held.push(item);
  }

  /** Stops retrying and forgets what Redis has not confirmed (its messages stay unacked). */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.held = [];
    void this.retention?.close();
  }

  /** Adds one job; resolves true when Redis took it (or its dead letter). */
  private async send(item: Pending): Promise<boolean> {
    const { request } = item;
    this.inFlight += 1;
    this.options.beforeSend?.();
    try {
      await (this.options.queues[request.queue] as Queues["hg-sync"]).add(request.name as never, request.data as never, request.opts);
      if (this.options.afterAdd) await this.options.afterAdd();
      this.inFlight -= 1;
      if (request.queue === "dead-letter") this.retention?.poke();
      if (!this.closed) item.done(request);
      return true;
    } catch (error) {
      this.inFlight -= 1;
      if (this.closed) return false;
      const replacement = this.permanentFailure(request, error as Error);
      if (replacement) return this.send({ request: replacement, done: item.done });
      this.held.push(item);
      this.becomeUnhealthy(error as Error);
      return false;
    }
  }

  /** For a job refused for what it is (not for an outage): the dead letter to add instead. */
  private permanentFailure(request: AnyJobRequest, error: Error): AnyJobRequest | undefined {
    const message = error?.message ?? String(error);
    if (!this.options.isConnected() || CONNECTION_ERROR.test(message) || TRANSIENT_REPLY.test(message)) return undefined;
    if (request.queue === "dead-letter" || !("message" in request.data)) {
      this.options.log.error({ err: message, jobId: request.opts.jobId }, "Redis refuses a dead letter: its message stays unacked and blocks its feed");
      return undefined;
    }
    this.options.log.error({ err: message, queue: request.queue, jobId: request.opts.jobId }, "BullMQ refused the job: dead-lettering its message");
    return deadLetterJobRequest({
      kind: "dead-letter",
      reason: `BullMQ refused the ${request.queue} job ${request.opts.jobId}: ${message}`,
      message: request.data.message,
    });
  }

  private becomeUnhealthy(error: Error): void {
    if (this.healthy) {
      this.healthy = false;
      this.options.log.warn({ err: error.message, held: this.outstanding }, "Redis is not taking jobs: holding messages unacked and pausing consumption");
      this.options.onHealthChange(false);
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryAttempt += 1;
    const base = Math.min(this.retryMaxDelayMs, this.retryInitialDelayMs * 2 ** (this.retryAttempt - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retry();
    }, delay);
  }

  private async retry(): Promise<void> {
    if (this.closed) return;
    const items = this.held.splice(0);
    const results = await Promise.all(items.map((item) => this.send(item)));
    if (this.closed || !results.every(Boolean)) return; // send() has scheduled the next retry
    // Requests that arrived during the retry (deliveries already on their way).
    if (this.held.length) return this.retry();
    this.retryAttempt = 0;
    if (!this.healthy) {
      this.healthy = true;
      this.options.log.info("Redis is taking jobs again: resuming consumption");
      this.options.onHealthChange(true);
    }
  }
}
