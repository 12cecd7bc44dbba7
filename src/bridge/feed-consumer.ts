/**
 * Consumes one of our Pulse queues (a feed) on a connection of its own.
 *
 * Lifecycle (amqplib's built-in recovery drives the connection):
 *   connecting → set up (channel, exchanges, queue, bindings, prefetch)
 *   → consuming ⇄ paused (Redis away: consumer cancelled, unacked kept)
 *   → on any loss (connection drop, channel error, server-side consumer
 *     cancel when the queue is deleted) the connection is closed and recovery
 *     reconnects with backoff and jitter, running the set-up again
 *   → closed (close(): cancel, let in-flight work be acked, disconnect).
 * Each set-up opens a new channel with its own AckTracker; a dead channel's
 * tracker is retired, so nothing is ever acked on a channel that has died.
 *
 * Hostile messages. The queue is a quorum queue with a delivery limit and a
 * dead-letter exchange of ours: a message that kills our connection every
 * time it is delivered (amqplib cannot decode its headers: a stack overflow
 * in its recursive decoder, reported as a connection error) is moved by the
 * broker into the poison queue after PULSE_DELIVERY_LIMIT redeliveries, and
 * waits there for `replay --poison`. RabbitMQ 3.x counts a delivery returned
 * by a dying connection as one; so that the innocent messages in flight with
 * it do not use up their limit too, every set-up after a loss we did not ask
 * for is *careful*: prefetch 1 until PULSE_PREFETCH messages have been
 * settled, so only the culprit is in flight when the connection dies again.
 * Should the broker not count such returns (RabbitMQ 4.3 counts only failed
 * deliveries), the bridge moves the message itself: after more consecutive
 * decoding failures than the delivery limit allows, with nothing settled in
 * between, set-up hands the queue's first message to a big-stack reader that
 * republishes it to the poison exchange (dead-letter headers included) and
 * acks it.
 *
 * Set-up also retires the classic queue of earlier versions (legacyQueue):
 * unbound once the new queue is bound, drained through the normal path by a
 * big-stack reader (queue-reader.ts), deleted once empty.
 *
 * One connection per feed keeps failures apart: on real Pulse an exchange that
 * has gone away (exchange/github-webhooks/v1 is likely dead) or a queue Pulse
 * deleted affects its own feed only.
 */
import { hostname } from "node:os";
import amqp, { type Channel, type ChannelModel, type ConsumeMessage, type RecoveringChannelModel } from "amqplib";
import { type Config, type PulseFeed, redactUrl } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { brokerReconnects } from "../core/metrics.ts";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";
import { type FeedBinding, feedBindings, feedQueueArguments, poisonQueueArguments } from "../pulse/feed-topology.ts";
import { type QueueReader, readQueue } from "../pulse/queue-reader.ts";
import type { IncomingMessage } from "../routing/route-message.ts";
import { AckTracker } from "./ack-tracker.ts";
import { feedSource } from "./feed-source.ts";

/**
 * Handles one delivery and calls `settled` once the message may be acked (its
 * job is in Redis, or it was ignored). Never calling it leaves the message
 * unacked, for RabbitMQ to deliver again once this channel is gone.
 */
export type DeliveryHandler = (message: IncomingMessage, settled: () => void) => void;

export interface FeedConsumerOptions {
  feed: PulseFeed;
  config: Config;
  log: Logger;
  handle: DeliveryHandler;
  /** How often an exchange found missing is checked again. */
  exchangeRecheckMs?: number;
  /** Reconnection backoff. */
  reconnectInitialDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** Consecutive decoding failures after which set-up moves the queue's first message to the poison queue itself (default PULSE_DELIVERY_LIMIT + 2). */
  moveUndecodableAfter?: number;
}

export interface FeedStatus {
  queue: string;
  source: string;
  connected: boolean;
  consuming: boolean;
  /** Prefetch 1 after an unexpected loss (see the file comment). */
  careful: boolean;
  /** The classic queue of an earlier version is being drained. */
  migrating: boolean;
  /** Exchanges that did not exist at the last check: their messages are not received. */
  missingExchanges: string[];
  unacked: number;
}

interface Generation {
  model: ChannelModel;
  channel: Channel;
  tracker: AckTracker;
  consumerTag: string | undefined;
  /** The prefetch the current consumer was started with. */
  consumerPrefetch: number;
  /** Set up carefully (prefetch 1); `settled` counts towards leaving that. */
  careful: boolean;
  settled: number;
  alive: boolean;
  missing: FeedBinding[];
  recheckTimer: NodeJS.Timeout | undefined;
}

export class FeedConsumer {
  readonly source: string;
  private connection: RecoveringChannelModel | undefined;
  private current: Generation | undefined;
  private paused = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private connectedOnce = false;
  /** The next set-up is careful: the last connection or channel was lost, not closed by us. */
  private careful = false;
  private legacyDrain: QueueReader | undefined;
  /** Connections lost to a frame amqplib could not decode, since the last settled delivery. */
  private undecodableStreak = 0;
  // Consume/cancel calls are serialised so pause, resume and set-up never race.
  private consumeOps: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly options: FeedConsumerOptions) {
    this.source = feedSource(options.feed);
    this.log = options.log.child({ feed: this.source, queue: options.feed.queue });
  }

  /** What a connection to this feed is called on the broker (rabbitmqctl list_connections, management UI). */
  get connectionName(): string {
    return `pulse-bridge ${this.options.feed.queue} (${hostname()}:${process.pid})`;
  }

  status(): FeedStatus {
    const generation = this.current;
    return {
      queue: this.options.feed.queue,
      source: this.source,
      connected: Boolean(generation?.alive),
      consuming: Boolean(generation?.alive && generation.consumerTag),
      careful: Boolean(generation?.alive && generation.careful),
      migrating: this.legacyDrain !== undefined,
      missingExchanges: generation?.missing.map((b) => b.exchange) ?? [],
      unacked: generation?.tracker.unacked ?? 0,
    };
  }

  /** Starts connecting; does not wait for the broker (status() tells). */
  async start(): Promise<void> {
    const { feed, config } = this.options;
    const url = new URL(feed.url);
    if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", String(config.pulse.heartbeatSeconds));
    this.connection = await amqp.connect(url.toString(), {
      ...AMQP_SOCKET_OPTIONS,
      clientProperties: { connection_name: this.connectionName },
      recovery: {
        initialDelay: this.options.reconnectInitialDelayMs ?? 500,
        maxDelay: this.options.reconnectMaxDelayMs ?? 30_000,
        factor: 2,
        jitter: 0.5,
        waitForConnect: false,
        setup: (model: ChannelModel) => this.setup(model),
      },
    });
    // With waitForConnect false, recovery's first attempt waits for
    // setImmediate, so these are in place before it can emit anything. Each
    // connection also gets its own 'error' listener the moment set-up starts
    // (recovery only listens once set-up has finished).
    const connection = this.connection;
    connection.on("error", () => {}); // logged by the connection's own listener (setup)
    connection.on("disconnect", (error: Error) => {
      if (this.closing) return;
      this.careful = true;
      this.log.warn({ err: error.message }, "broker connection lost: reconnecting");
    });
    connection.on("connect-failed", (error: Error) => {
      this.log.error({ err: error.message, broker: redactUrl(feed.url) }, "could not connect to the broker and set up the queue: retrying");
    });
    connection.on("reconnect-scheduled", (info: { attempt: number; delay: number }) => {
      this.log.info({ attempt: info.attempt, delayMs: info.delay }, "reconnecting to the broker");
    });
    connection.on("connect", () => {
      if (this.connectedOnce) brokerReconnects.inc({ source: this.source });
      this.connectedOnce = true;
      const careful = Boolean(this.current?.careful);
      this.log.info({ broker: redactUrl(feed.url), prefetch: careful ? 1 : config.pulse.prefetch, careful, paused: this.paused }, "consuming from Pulse");
    });
    connection.on("blocked", (reason: string) => this.log.warn({ reason }, "broker blocked the connection"));
    connection.on("handler-error", (error: Error) => this.log.error({ err: error.message }, "error in a broker event handler"));
  }

  /** Redis is away: stop taking deliveries (those held stay unacked). */
  pause(): Promise<void> {
    this.paused = true;
    return this.syncConsumer();
  }

  resume(): Promise<void> {
    this.paused = false;
    return this.syncConsumer();
  }

  /** Stops consuming, waits (up to drainMs) for in-flight work to be acked, disconnects. Idempotent. */
  close(drainMs = 10_000): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      await this.legacyDrain?.stop();
      await this.syncConsumer();
      const generation = this.current;
      if (generation?.alive) {
        let timer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          generation.tracker.drained().then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), drainMs))),
        ]);
        clearTimeout(timer);
        if (!drained) this.log.warn({ unacked: generation.tracker.unacked }, "closing with unacked messages: the broker will deliver them again");
        this.retire(generation);
        // Acks sit in the channel's outgoing buffer, which amqplib multiplexes
        // onto the socket later; a connection close would overtake them (and
        // the broker requeue acked work). Closing the channel first queues
        // behind them and waits for the broker's answer.
        await generation.channel.close().catch(() => {});
      }
      await this.connection?.close().catch(() => {});
      this.log.info("disconnected from Pulse");
    })();
    return this.closed;
  }

  /** The deliveries in flight of the live channel have all been acked. */
  drained(): Promise<void> {
    return this.current?.alive ? this.current.tracker.drained() : Promise.resolve();
  }

  private async setup(model: ChannelModel): Promise<void> {
    const { feed, config } = this.options;
    // First of all: a frame amqplib cannot decode (e.g. headers nested too
    // deep for its recursive decoder) is emitted as an 'error' on this
    // connection, and set-up (which starts the consumer) runs before recovery
    // listens. Unheard, that error would end the process.
    model.on("error", (error: Error) => {
      // A RangeError comes from amqplib's frame decoder (stack overflow, bounds), not from the network or the broker.
      if (error instanceof RangeError) this.undecodableStreak++;
      this.log.warn({ err: error.message, ...(error instanceof RangeError ? { undecodable: this.undecodableStreak } : {}) }, "broker connection error");
    });
    const channel = await model.createChannel();
    const careful = this.careful && config.pulse.prefetch > 1;
    const generation: Generation = {
      model,
      channel,
      tracker: new AckTracker(channel),
      consumerTag: undefined,
      consumerPrefetch: 0,
      careful,
      settled: 0,
      alive: true,
      missing: [],
      recheckTimer: undefined,
    };
    channel.on("error", (error: Error) => this.log.warn({ err: error.message }, "channel error"));
    channel.on("close", () => this.lost(generation, "channel closed"));

    const present: FeedBinding[] = [];
    for (const binding of feedBindings(feed, config)) {
      if (config.pulse.declareExchanges) {
        await channel.assertExchange(binding.exchange, "topic", { durable: true });
        present.push(binding);
      } else if (await exchangeExists(model, binding.exchange)) {
        present.push(binding);
      } else {
        generation.missing.push(binding);
      }
    }
    // The poison queue first, so nothing dead-lettered is ever unroutable.
    await channel.assertExchange(feed.poisonExchange, "topic", { durable: true });
    await channel.assertQueue(feed.poisonQueue, { durable: true, arguments: poisonQueueArguments(config) });
    await channel.bindQueue(feed.poisonQueue, feed.poisonExchange, "#");
    await channel.assertQueue(feed.queue, { durable: true, arguments: feedQueueArguments(feed, config) });
    for (const binding of present) await channel.bindQueue(feed.queue, binding.exchange, binding.pattern);
    await this.retireLegacyQueue(model, present);
    if (this.undecodableStreak >= (this.options.moveUndecodableAfter ?? config.pulse.deliveryLimit + 2)) await this.moveUndecodable();

    if (generation.missing.length) {
      this.log.error(
        { missing: generation.missing.map((b) => b.exchange), recheckMs: this.options.exchangeRecheckMs ?? 60_000 },
        "exchange does not exist on the broker (exchanges belong to their publishers): its messages cannot arrive; checking again periodically",
      );
      this.scheduleExchangeRecheck(generation);
    }
    // Replaces the previous generation, if its close event has not come yet.
    if (this.current && this.current !== generation) this.retire(this.current);
    this.current = generation;
    await this.syncConsumer();
    // The connection can die while the consumer starts (a delivery it cannot
    // decode, in the same read as consume-ok): recovery would then keep a dead
    // connection whose close it never hears. Failing set-up makes it retry.
    if (!generation.alive) throw new Error("the connection was lost while setting up");
  }

  /**
   * The broker has let the same undecodable message come back more often than
   * its delivery limit allows: move the queue's first message (with prefetch 1
   * that is the one; if another bridge took it meanwhile, the message moved is
   * kept all the same) to the poison queue from a big-stack reader.
   */
  private async moveUndecodable(): Promise<void> {
    const { feed } = this.options;
    const reader = readQueue({
      url: feed.url,
      queue: feed.queue,
      connectionName: `${this.connectionName} poison mover`,
      mode: "move-head",
      moveTo: { exchange: feed.poisonExchange, reason: "pulse-bridge: undecodable" },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        reader.done,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("moving the message timed out")), 30_000))),
      ]);
      const failures = this.undecodableStreak;
      this.undecodableStreak = 0;
      const moved = result.moved;
      if (moved) {
        this.log.error(
          { poisonQueue: feed.poisonQueue, exchange: moved.exchange, routingKey: moved.routingKey, droppedHeaders: moved.dropped, failures },
          "moved a message this bridge cannot decode to the poison queue (the broker did not dead-letter it): replay --poison after a look",
        );
      }
    } catch (error) {
      await reader.stop().catch(() => {});
      this.log.warn({ err: (error as Error).message }, "could not move an undecodable message to the poison queue: trying again at the next connection");
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The classic queue of an earlier version, if it still exists: unbound (the
   * new queue, bound already, gets everything from now on), then drained
   * through the normal path and deleted once empty. Messages in both (the
   * overlap) become the same job: job ids are deterministic.
   */
  private async retireLegacyQueue(model: ChannelModel, present: FeedBinding[]): Promise<void> {
    const { feed } = this.options;
    if (this.legacyDrain || feed.legacyQueue === feed.queue) return;
    const probe = await model.createChannel();
    probe.on("error", () => {});
    try {
      await probe.checkQueue(feed.legacyQueue);
    } catch (error) {
      if ((error as { code?: number }).code === 404) return;
      throw error;
    }
    for (const binding of present) await probe.unbindQueue(feed.legacyQueue, binding.exchange, binding.pattern);
    await probe.close().catch(() => {});
    this.log.warn({ legacyQueue: feed.legacyQueue }, "found the classic queue of an earlier version: unbound it, draining it into jobs");
    const drain = readQueue({
      url: feed.url,
      queue: feed.legacyQueue,
      connectionName: `${this.connectionName} legacy drain`,
      mode: "drain",
      onMessage: (message) =>
        new Promise<boolean>((resolve) =>
          this.options.handle(
            {
              feed,
              exchange: message.exchange,
              routingKey: message.routingKey,
              content: message.content,
              headers: message.headers,
              redelivered: message.redelivered,
            },
            () => resolve(true),
          ),
        ),
    });
    this.legacyDrain = drain;
    drain.done
      .then(
        (result) =>
          this.log.info(
            { legacyQueue: feed.legacyQueue, messages: result.read, deleted: result.deleted || result.missing },
            "classic queue of an earlier version drained and deleted",
          ),
        (error: Error) => {
          if (this.closing) return;
          this.log.warn(
            { err: error.message, legacyQueue: feed.legacyQueue },
            "draining the classic queue of an earlier version failed: trying again in a minute",
          );
          setTimeout(() => {
            const current = this.current;
            if (this.closing || !current?.alive || this.legacyDrain) return;
            this.retireLegacyQueue(current.model, present).catch((retryError: Error) =>
              this.log.warn({ err: retryError.message }, "could not check the classic queue of an earlier version"),
            );
          }, 60_000).unref();
        },
      )
      .finally(() => {
        if (this.legacyDrain === drain) this.legacyDrain = undefined;
      });
  }

  private scheduleExchangeRecheck(generation: Generation): void {
    generation.recheckTimer = setTimeout(async () => {
      generation.recheckTimer = undefined;
      if (!generation.alive) return;
      try {
        const stillMissing: FeedBinding[] = [];
        for (const binding of generation.missing) {
          if (await exchangeExists(generation.model, binding.exchange)) {
            await generation.channel.bindQueue(this.options.feed.queue, binding.exchange, binding.pattern);
            this.log.info({ exchange: binding.exchange }, "exchange now exists: bound");
          } else {
            stillMissing.push(binding);
          }
        }
        generation.missing = stillMissing;
      } catch (error) {
        this.log.warn({ err: (error as Error).message }, "checking missing exchanges failed");
      }
      if (generation.alive && generation.missing.length) this.scheduleExchangeRecheck(generation);
    }, this.options.exchangeRecheckMs ?? 60_000);
    generation.recheckTimer.unref();
  }

  /** Makes the consumer of the live channel match what is wanted (consuming unless paused or closing). */
  private syncConsumer(): Promise<void> {
    this.consumeOps = this.consumeOps.then(async () => {
      const generation = this.current;
      if (!generation?.alive) return;
      const wanted = !this.paused && !this.closing;
      const prefetch = generation.careful ? 1 : this.options.config.pulse.prefetch;
      try {
        // A prefetch applies to consumers started after it: a new one takes a new consumer.
        if (wanted && generation.consumerTag && generation.consumerPrefetch !== prefetch) {
          const tag = generation.consumerTag;
          generation.consumerTag = undefined;
          await generation.channel.cancel(tag);
        }
        if (wanted && !generation.consumerTag) {
          if (generation.consumerPrefetch !== prefetch) await generation.channel.prefetch(prefetch);
          generation.consumerPrefetch = prefetch;
          const { consumerTag } = await generation.channel.consume(this.options.feed.queue, (message) => this.onMessage(generation, message));
          generation.consumerTag = consumerTag;
        } else if (!wanted && generation.consumerTag) {
          const tag = generation.consumerTag;
          generation.consumerTag = undefined;
          await generation.channel.cancel(tag);
        }
      } catch (error) {
        // The channel died meanwhile; its close handler reconnects.
        this.log.warn({ err: (error as Error).message }, "could not change the consumer");
      }
    });
    return this.consumeOps;
  }

  private onMessage(generation: Generation, message: ConsumeMessage | null): void {
    if (message === null) {
      // The server cancelled us: the queue was deleted (Pulse deletes queues
      // that grow past their limit) or the node went away.
      generation.consumerTag = undefined;
      this.lost(generation, "the broker cancelled the consumer (queue deleted?)");
      return;
    }
    if (!generation.alive) return;
    const delivery = generation.tracker.track(message);
    try {
      this.options.handle(
        {
          feed: this.options.feed,
          exchange: message.fields.exchange,
          routingKey: message.fields.routingKey,
          content: message.content,
          headers: (message.properties.headers ?? {}) as Record<string, unknown>,
          redelivered: message.fields.redelivered,
        },
        () => {
          generation.tracker.complete(delivery);
          this.undecodableStreak = 0;
          if (generation.careful) this.settledCarefully(generation);
        },
      );
    } catch (error) {
      // A handler bug: keep the message unacked rather than lose it.
      this.log.error({ err: (error as Error).message, routingKey: message.fields.routingKey }, "delivery handler failed");
    }
  }

  /**
   * Careful mode ends once as many messages as the full prefetch window holds
   * have been settled one by one: the innocent messages that were in flight
   * when the connection died are all behind us, so a full window again cannot
   * put them next to the culprit once more.
   */
  private settledCarefully(generation: Generation): void {
    if (!generation.alive || ++generation.settled < this.options.config.pulse.prefetch) return;
    generation.careful = false;
    this.careful = false;
    this.log.info({ settled: generation.settled, prefetch: this.options.config.pulse.prefetch }, "careful mode over: back to the full prefetch");
    void this.syncConsumer();
  }

  /** A generation is lost: retire it and, unless closing, reconnect (recovery re-runs the set-up). */
  private lost(generation: Generation, why: string): void {
    if (!generation.alive) return;
    this.retire(generation);
    if (this.closing) return;
    this.careful = true;
    this.log.warn({ why }, "lost the channel: reconnecting");
    // Closing the connection hands over to amqplib's recovery (backoff with
    // jitter, then set-up: queue, bindings and consumer declared again).
    generation.model.close().catch(() => {});
  }

  private retire(generation: Generation): void {
    generation.alive = false;
    generation.consumerTag = undefined;
    clearTimeout(generation.recheckTimer);
    generation.tracker.retire();
  }
}

/** A passive check closes its channel when the exchange is missing, so it gets a channel of its own. */
async function exchangeExists(model: ChannelModel, exchange: string): Promise<boolean> {
  const probe = await model.createChannel();
  probe.on("error", () => {});
  try {
    await probe.checkExchange(exchange);
    await probe.close().catch(() => {});
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return false;
    throw error;
  }
}
