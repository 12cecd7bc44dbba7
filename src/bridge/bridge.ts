/**
 * The bridge (docs/ARCHITECTURE.md, "One message"): consumes our Pulse queues and turns each message
 * into a BullMQ job, acking only once Redis has it.
 *
 * One message's path: FeedConsumer receives it → routeMessage decides
 * (enqueue / dead-letter / ignore) → Enqueuer adds the job (all in-flight adds
 * pipelined on one Redis connection) → once Redis confirms, the feed's
 * AckTracker acks it with the done prefix of its channel (one ack frame with
 * allUpTo for a run of completed deliveries). Up to PULSE_PREFETCH messages
 * per feed are in flight. "Redis confirms" is REDIS_DURABILITY's meaning
 * (redis-durability.ts: checked before consuming; replicas:N adds a WAIT
 * between the add's reply and the ack).
 *
 * Adds are not batched with addBulk: measured here, per-tick addBulk saved
 * ~7% CPU but lowered throughput (a batch resolves, and is acked, all at once,
 * which starves the prefetch window), and single adds keep a refused job's
 * failure to itself. What batching would have saved on the wire is had by
 * corking the socket for one event-loop turn (write-coalescer.ts): the adds
 * of one socket read from RabbitMQ leave in one write.
 *
 * When Redis stops taking jobs, every feed cancels its consumer (deliveries
 * held stay unacked in RabbitMQ) until the Enqueuer's retries succeed; then
 * consumption resumes. Used by `pulse-bridge bridge`, `start` and the tests,
 * all in-process through startBridge().
 */

import type { AnyJobRequest } from "../contract/contracts.ts";
import { deadLetterJobRequest } from "../contract/job-requests.ts";
import { closeQueues, openQueues } from "../contract/queues.ts";
import type { Config } from "../core/config.ts";
import { pulseFeeds } from "../core/config.ts";
import type { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";
import { bridgePaused, messagesConsumed, messagesDeadLettered, messagesEnqueued, messagesIgnored } from "../core/metrics.ts";
import { createRedis, isCluster } from "../core/redis.ts";
import { durableHandOff } from "../core/redis-durability.ts";
import { type OpenSpan, queueTelemetry, startSpan, tracingOn } from "../core/tracing.ts";
import { type IncomingMessage, originalMessage, type RouteDecision, routeMessage } from "../routing/route-message.ts";
import { Enqueuer } from "./enqueuer.ts";
import { FeedConsumer, type FeedStatus } from "./feed-consumer.ts";
import { feedSource } from "./feed-source.ts";
import { coalesceWrites } from "./write-coalescer.ts";

export interface BridgeOptions {
  config: Config;
  log: Logger;
  /** When given, close() is registered with it (released in reverse order of opening). */
  lifecycle?: Lifecycle;
  /** How long close() waits for in-flight adds to be acked before disconnecting anyway. */
  drainTimeoutMs?: number;
  /** Backoffs, shortened by tests. */
  reconnectInitialDelayMs?: number;
  reconnectMaxDelayMs?: number;
  redisRetryMaxDelayMs?: number;
  /** How long the start waits for Redis to give REDIS_DURABILITY after a failover (default 60 s; tests shorten it). */
  durabilityPatienceMs?: number;
  exchangeRecheckMs?: number;
  /** See FeedConsumerOptions.moveUndecodableAfter (tests shorten it). */
  moveUndecodableAfter?: number;
}

export interface BridgeStatus {
  /** Every feed has a live channel. */
  connected: boolean;
  /** Consumption stopped because Redis is not taking jobs. */
  paused: boolean;
  /** Jobs waiting for Redis to confirm them. */
  outstanding: number;
  feeds: FeedStatus[];
}

export interface BridgeHandle {
  status(): BridgeStatus;
  /** Stops consuming, lets in-flight adds settle and be acked, disconnects. Idempotent. */
  close(): Promise<void>;
}

export async function startBridge(options: BridgeOptions): Promise<BridgeHandle> {
  const { config, lifecycle } = options;
  const log = options.log.child({ component: "bridge" });

  // Fail-fast producer connection: while Redis is away, adds reject at once
  // (no offline queue), which is what pauses the bridge.
  const redis = createRedis(config.redis, "producer");
  let redisDown = false;
  redis.on("error", (error: Error) => {
    if (!redisDown) log.warn({ err: error.message }, "Redis connection error");
    redisDown = true;
  });
  redis.on("ready", () => {
    if (redisDown) log.info("Redis connection ready");
    redisDown = false;
  });
  // REDIS_DURABILITY: refuse to start (before consuming anything) when this Redis cannot give it.
  const afterAdd = await durableHandOff(redis, config.redis, config.redis.durability, log, options.durabilityPatienceMs);
  // With traces on, each add stores the delivery's trace context in its job.
  const queues = openQueues(redis, config.redis.prefix, queueTelemetry());
  for (const queue of Object.values(queues)) queue.on("error", (error: Error) => log.debug({ err: error.message, queue: queue.name }, "queue error"));

  const feeds: FeedConsumer[] = [];
  const enqueuer = new Enqueuer({
    queues,
    log,
    isConnected: () => redis.status === "ready",
    // A Cluster writes to several sockets, one per node: nothing to cork.
    ...(isCluster(redis) ? {} : { beforeSend: coalesceWrites(redis) }),
    ...(afterAdd ? { afterAdd } : {}),
    deadLetterRetention: config.deadLetters,
    ...(options.redisRetryMaxDelayMs !== undefined ? { retryMaxDelayMs: options.redisRetryMaxDelayMs } : {}),
    onHealthChange(healthy) {
      bridgePaused.set(healthy ? 0 : 1);
      for (const feed of feeds) void (healthy ? feed.resume() : feed.pause());
    },
  });

  const handle = (message: IncomingMessage, settled: () => void): void => {
    const source = feedSource(message.feed);
    messagesConsumed.inc({ source });
    // A span from the delivery until Redis has its job (none when traces are off).
    const span = tracingOn()
      ? startSpan(
          `consume ${message.exchange}`,
          {
            "messaging.system": "rabbitmq",
            "messaging.destination.name": message.exchange,
            "messaging.rabbitmq.destination.routing_key": message.routingKey,
            "pulse_bridge.feed": source,
          },
          "consumer",
        )
      : undefined;
    let decision: RouteDecision;
    try {
      decision = routeMessage(message, config);
    } catch (error) {
      // A bug of ours, not the message's fault; dead-lettered all the same
      // (replayable once fixed), because an unacked message would hold up the
      // acks of every later one on its channel.
      log.error({ err: (error as Error).message, source, routingKey: message.routingKey }, "routing failed: dead-lettering the message");
      decision = {
        action: "dead-letter",
        job: deadLetterJobRequest({
          kind: "dead-letter",
          reason: `bridge error while routing: ${(error as Error).message}`,
          message: originalMessage(message),
        }),
      };
    }
    if (decision.action === "ignore") {
      // A fixed label (the sender's text would add a time series per value).
      messagesIgnored.inc({ source, reason: decision.category });
      log.debug({ source, routingKey: message.routingKey, reason: decision.reason }, "message ignored");
      span?.setAttributes({ "pulse_bridge.outcome": "ignored" });
      span?.end();
      settled();
      return;
    }
    if (decision.action === "dead-letter") {
      log.warn({ source, exchange: message.exchange, routingKey: message.routingKey, reason: decision.job.data.reason }, "invalid message: dead-lettered");
    }
    const job = decision.job;
    // Active while BullMQ adds the job, which stores this trace's context in it.
    if (span) span.run(() => enqueue(job, source, span, settled));
    else enqueue(job, source, undefined, settled);
  };

  // Made once, not per message: a closure per message costs (and under tsx,
  // which names every `const f = () =>`, a defineProperty call too).
  const enqueue = (job: AnyJobRequest, source: string, span: OpenSpan | undefined, settled: () => void): void =>
    enqueuer.add(job, (added) => {
      if (added.queue === "dead-letter") messagesDeadLettered.inc({ source });
      else messagesEnqueued.inc({ source, queue: added.queue });
      span?.setAttributes({
        "pulse_bridge.outcome": added.queue === "dead-letter" ? "dead-letter" : "enqueued",
        "bullmq.job.id": added.opts.jobId,
        "bullmq.queue.name": added.queue,
      });
      span?.end();
      settled();
    });

  for (const feed of pulseFeeds(config)) {
    feeds.push(
      new FeedConsumer({
        feed,
        config,
        log,
        handle,
        ...(options.exchangeRecheckMs !== undefined ? { exchangeRecheckMs: options.exchangeRecheckMs } : {}),
        ...(options.reconnectInitialDelayMs !== undefined ? { reconnectInitialDelayMs: options.reconnectInitialDelayMs } : {}),
        ...(options.reconnectMaxDelayMs !== undefined ? { reconnectMaxDelayMs: options.reconnectMaxDelayMs } : {}),
        ...(options.moveUndecodableAfter !== undefined ? { moveUndecodableAfter: options.moveUndecodableAfter } : {}),
      }),
    );
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info("bridge stopping: draining in-flight messages");
      // Feeds stop consuming and wait for their in-flight adds to be acked
      // (bounded: with Redis away they never will, and stay in RabbitMQ).
      await Promise.all(feeds.map((feed) => feed.close(options.drainTimeoutMs ?? 10_000)));
      enqueuer.close();
      await closeQueues(queues).catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
      bridgePaused.set(0);
      log.info("bridge stopped");
    })());
  lifecycle?.defer("bridge", close);

  try {
    for (const feed of feeds) await feed.start();
  } catch (error) {
    await close();
    throw error;
  }
  log.info({ feeds: feeds.map((f) => f.source) }, "bridge started");

  return {
    status() {
      const statuses = feeds.map((feed) => feed.status());
      return {
        connected: statuses.every((s) => s.connected),
        paused: !enqueuer.isHealthy,
        outstanding: enqueuer.outstanding,
        feeds: statuses,
      };
    },
    close,
  };
}
