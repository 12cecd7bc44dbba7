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
 * One connection per feed keeps failures apart: on real Pulse an exchange that
 * has gone away (exchange/github-webhooks/v1 is likely dead) or a queue Pulse
 * deleted affects its own feed only.
 */
import { hostname } from "node:os";
import amqp, { type Channel, type ChannelModel, type ConsumeMessage, type RecoveringChannelModel } from "amqplib";
import { AMQP_SOCKET_OPTIONS } from "../amqp.ts";
import { redactUrl, type Config, type PulseFeed } from "../config.ts";
import type { Logger } from "../log.ts";
import { brokerReconnects } from "../metrics.ts";
import { AckTracker } from "./ack-tracker.ts";
import { feedBindings, feedSource, type FeedBinding } from "./feed-bindings.ts";
import type { IncomingMessage } from "./route-message.ts";

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
}

export interface FeedStatus {
  queue: string;
  source: string;
  connected: boolean;
  consuming: boolean;
  /** Exchanges that did not exist at the last check: their messages are not received. */
  missingExchanges: string[];
  unacked: number;
}

interface Generation {
  model: ChannelModel;
  channel: Channel;
  tracker: AckTracker;
  consumerTag: string | undefined;
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
    const connection = this.connection;
    connection.on("error", (error: Error) => this.log.warn({ err: error.message }, "broker connection error"));
    connection.on("disconnect", (error: Error) => {
      if (!this.closing) this.log.warn({ err: error.message }, "broker connection lost: reconnecting");
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
      this.log.info({ broker: redactUrl(feed.url), prefetch: config.pulse.prefetch, paused: this.paused }, "consuming from Pulse");
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
    const channel = await model.createChannel();
    const generation: Generation = {
      model,
      channel,
      tracker: new AckTracker(channel),
      consumerTag: undefined,
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
    await channel.assertQueue(feed.queue, { durable: true, arguments: { "x-max-length": config.pulse.maxLength } });
    for (const binding of present) await channel.bindQueue(feed.queue, binding.exchange, binding.pattern);
    await channel.prefetch(config.pulse.prefetch);

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
      try {
        if (wanted && !generation.consumerTag) {
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
        () => generation.tracker.complete(delivery),
      );
    } catch (error) {
      // A handler bug: keep the message unacked rather than lose it.
      this.log.error({ err: (error as Error).message, routingKey: message.fields.routingKey }, "delivery handler failed");
    }
  }

  /** A generation is lost: retire it and, unless closing, reconnect (recovery re-runs the set-up). */
  private lost(generation: Generation, why: string): void {
    if (!generation.alive) return;
    this.retire(generation);
    if (this.closing) return;
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
