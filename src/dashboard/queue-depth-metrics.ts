/**
 * Queue depths for /metrics, read at scrape time:
 * - `pulse_bridge_bullmq_jobs{queue,state}`: BullMQ job counts per state;
 * - `pulse_bridge_pulse_queue_messages{queue,state="ready"|"unacked"}`: our
 *   Pulse queues as the broker sees them. Ready comes from a passive
 *   queue.declare (AMQP has no unacked count); unacked needs the RabbitMQ
 *   management API, used when RABBITMQ_MANAGEMENT_URL is set (then ready
 *   comes from there too). Pulse deletes a queue that grows past its limit,
 *   so alert on ready+unacked against `pulse_bridge_pulse_queue_max_length`.
 * - `pulse_bridge_pulse_queue_exists`: 0 when a queue is missing (deleted).
 * The poison queues (`queue/<user>/<PULSE_QUEUE>/poison`, one per
 * connection) are among them: anything ready there waits for an operator
 * (`replay --poison`), so alert on it above 0.
 */
import { Gauge, type Registry } from "prom-client";
import type { QueueName } from "../contract/contracts.ts";
import type { Queues } from "../contract/queues.ts";
import type { Config, PulseFeed } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { type BrokerProbe, PROBE_TIMEOUT_MS } from "./broker-probe.ts";

const BULLMQ_STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children", "failed", "completed"] as const;

export interface QueueDepthSources {
  config: Config;
  queues: Queues;
  feeds: PulseFeed[];
  brokers: Map<string, BrokerProbe>;
  log: Logger;
}

interface PulseDepth {
  ready: number;
  unacked: number | undefined;
  consumers: number;
}

/** Reads a queue from the management API: `{messages_ready, messages_unacknowledged, consumers}`. */
async function managementDepth(managementUrl: string, feed: PulseFeed): Promise<PulseDepth | undefined> {
  const base = new URL(managementUrl);
  const authorization = base.username
    ? `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString("base64")}`
    : undefined;
  base.username = "";
  base.password = "";
  const vhost = decodeURIComponent(new URL(feed.url).pathname.replace(/^\//, "")) || "/";
  const url = new URL(`api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(feed.queue)}`, base.toString().replace(/\/?$/, "/"));
  const response = await fetch(url, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`management API answered ${response.status}`);
  const body = (await response.json()) as { messages_ready?: number; messages_unacknowledged?: number; consumers?: number };
  return { ready: body.messages_ready ?? 0, unacked: body.messages_unacknowledged ?? 0, consumers: body.consumers ?? 0 };
}

async function amqpDepth(probe: BrokerProbe, feed: PulseFeed): Promise<PulseDepth | undefined> {
  return probe.withChannel(async (channel) => {
    try {
      const { messageCount, consumerCount } = await channel.checkQueue(feed.queue);
      return { ready: messageCount, unacked: undefined, consumers: consumerCount };
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  });
}

export function registerQueueDepthMetrics(registry: Registry, sources: QueueDepthSources): void {
  const { config, queues, feeds, brokers, log } = sources;
  new Gauge({
    name: "pulse_bridge_bullmq_jobs",
    help: "BullMQ jobs per queue and state",
    labelNames: ["queue", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        (Object.keys(queues) as QueueName[]).map(async (name) => {
          try {
            const counts = await queues[name].getJobCounts(...BULLMQ_STATES);
            for (const state of BULLMQ_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          } catch (error) {
            log.warn({ err: (error as Error).message, queue: name }, "could not read BullMQ job counts");
          }
        }),
      );
    },
  });

  // Each feed's queue, and each connection's poison queue once (its feeds share it).
  const watched = [...feeds];
  for (const feed of feeds) {
    if (!watched.some((w) => w.connection === feed.connection && w.queue === feed.poisonQueue)) watched.push({ ...feed, queue: feed.poisonQueue });
  }
  const depths = async () =>
    Promise.all(
      watched.map(async (feed) => {
        try {
          const probe = brokers.get(feed.connection);
          const depth = config.pulse.managementUrl ? await managementDepth(config.pulse.managementUrl, feed) : probe ? await amqpDepth(probe, feed) : undefined;
          return { feed, depth, error: false };
        } catch (error) {
          log.warn({ err: (error as Error).message, queue: feed.queue }, "could not read Pulse queue depth");
          return { feed, depth: undefined, error: true };
        }
      }),
    );
  // One broker round per scrape feeds all three gauges.
  let current: Promise<Awaited<ReturnType<typeof depths>>> | undefined;
  const scrape = () => {
    current ??= depths().finally(() => setTimeout(() => (current = undefined), 500).unref());
    return current;
  };

  new Gauge({
    name: "pulse_bridge_pulse_queue_messages",
    help: "Messages in our Pulse queues, as the broker reports them (unacked needs RABBITMQ_MANAGEMENT_URL)",
    labelNames: ["queue", "connection", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const { feed, depth } of await scrape()) {
        if (!depth) continue;
        this.set({ queue: feed.queue, connection: feed.connection, state: "ready" }, depth.ready);
        if (depth.unacked !== undefined) this.set({ queue: feed.queue, connection: feed.connection, state: "unacked" }, depth.unacked);
      }
    },
  });
  new Gauge({
    name: "pulse_bridge_pulse_queue_consumers",
    help: "Consumers of our Pulse queues",
    labelNames: ["queue", "connection"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const { feed, depth } of await scrape()) if (depth) this.set({ queue: feed.queue, connection: feed.connection }, depth.consumers);
    },
  });
  new Gauge({
    name: "pulse_bridge_pulse_queue_exists",
    help: "1 when our Pulse queue exists on the broker, 0 when it is missing (Pulse deletes queues that overflow)",
    labelNames: ["queue", "connection"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const { feed, depth, error } of await scrape()) if (!error) this.set({ queue: feed.queue, connection: feed.connection }, depth ? 1 : 0);
    },
  });
  new Gauge({
    name: "pulse_bridge_pulse_queue_max_length",
    help: "x-max-length configured on our Pulse queues (PULSE_MAX_LENGTH)",
    registers: [registry],
    collect() {
      this.set(config.pulse.maxLength);
    },
  });
}
