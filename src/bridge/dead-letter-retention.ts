/**
 * Retention of dead letters (DEAD_LETTER_MAX_COUNT, DEAD_LETTER_MAX_AGE).
 *
 * Nobody consumes the dead-letter queue, so its letters stay in BullMQ's wait
 * list, where `removeOnComplete`/`removeOnFail` never apply. Left alone, a
 * sender of distinct invalid messages would grow it until Redis is full (and
 * then the bridge pauses). The bridge, which adds every letter, enforces the
 * bounds: at start, after each letter it adds (throttled: at most one run per
 * `minIntervalMs`, and one more after the last letter of a burst) and on a
 * slow timer, so letters also age out when none arrive.
 *
 * A run uses BullMQ's own clean (one Lua script per batch of at most BATCH
 * jobs, so Redis is never blocked for long): letters older than the maximum
 * age go from every state a letter can be in; then the oldest waiting letters
 * beyond the maximum count (the tail of the wait list). Two bridges trimming
 * at the same moment may both remove the excess; the queue then holds a
 * little less than the maximum, never more.
 *
 * Lifecycle: created by the Enqueuer (idle until `start()`), `poke()` any
 * number of times, `close()` once (idempotent; waits for a run in progress).
 */
import type { Queue } from "bullmq";
import type { Logger } from "../core/log.ts";

export interface DeadLetterRetentionOptions {
  maxCount: number;
  maxAgeMs: number;
}

const BATCH = 1000;
const AGE_STATES = ["wait", "paused", "delayed", "prioritized", "failed", "completed"] as const;

export class DeadLetterRetention {
  private timer: NodeJS.Timeout | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastRun = 0;
  private pending = false;
  private closed = false;

  constructor(
    private readonly queue: Queue,
    private readonly limits: DeadLetterRetentionOptions,
    private readonly log: Logger,
    private readonly minIntervalMs = 5_000,
    private readonly periodMs = 10 * 60_000,
  ) {}

  /** First run now, then one every `periodMs`. */
  start(): void {
    if (this.closed || this.periodic) return;
    this.periodic = setInterval(() => this.poke(), this.periodMs);
    this.periodic.unref();
    this.poke();
  }

  /** A letter was added: run soon (throttled). */
  poke(): void {
    if (this.closed) return;
    this.pending = true;
    if (this.timer || this.running) return;
    const wait = Math.max(0, this.lastRun + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.run().finally(() => {
        this.running = undefined;
        // Letters added during the run: one more, after the interval.
        if (this.pending) this.poke();
      });
    }, wait);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.periodic);
    this.timer = undefined;
    await this.running;
  }

  /** One enforcement of both bounds. */
  private async run(): Promise<void> {
    this.pending = false;
    this.lastRun = Date.now();
    try {
      let aged = 0;
      for (const state of AGE_STATES) {
        for (;;) {
          if (this.closed) return;
          const removed = await this.queue.clean(this.limits.maxAgeMs, BATCH, state);
          aged += removed.length;
          if (removed.length < BATCH) break;
        }
      }
      let trimmed = 0;
      for (;;) {
        if (this.closed) break;
        const excess = (await this.queue.getWaitingCount()) - this.limits.maxCount;
        if (excess <= 0) break;
        // grace 0: every job at the tail (the oldest) qualifies.
        const removed = await this.queue.clean(0, Math.min(excess, BATCH), "wait");
        trimmed += removed.length;
        if (removed.length === 0) break;
      }
      this.lastRun = Date.now();
      if (aged || trimmed) this.log.info({ aged, trimmed, ...this.limits }, "dead letters removed by retention (DEAD_LETTER_MAX_AGE / DEAD_LETTER_MAX_COUNT)");
    } catch (error) {
      if (this.closed) return; // the bridge closed its queues under a run
      // Redis away: the bridge pauses for that anyway; the next poke retries.
      this.log.warn({ err: (error as Error).message }, "dead-letter retention failed; retrying later");
    }
  }
}
