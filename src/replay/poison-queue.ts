/**
 * `replay --poison`: empties the poison queues (one per user and connection,
 * `queue/<user>/<PULSE_QUEUE>/poison`) through the bridge's own routing.
 *
 * A message is in a poison queue because RabbitMQ dead-lettered it: it was
 * delivered PULSE_DELIVERY_LIMIT times more without an ack (typically it
 * killed our connection each time: headers amqplib could not decode), or it
 * was dropped from the head of a full queue. The queue is read by a worker
 * thread with a large stack (src/pulse/queue-reader.ts), which drops headers
 * too deep or too large to keep and notes that in a header of its own. Each
 * message is then routed with today's code (routeMessage), from the feed and
 * the exchange and routing key RabbitMQ recorded in `x-death`:
 * - a valid message becomes its job (deterministic id: harmless if the bridge
 *   made it already);
 * - an invalid one becomes a dead letter with the reason (`replay
 *   --dead-letter` after a fix);
 * - one we ignore is dropped;
 * and is acked from the poison queue only once Redis has the job. A message
 * from no queue of this configuration stays in the poison queue.
 */

import { addJob, type Queues } from "../contract/queues.ts";
import { type Config, type PulseFeed, pulseFeeds } from "../core/config.ts";
import { type ReadMessage, readQueue } from "../pulse/queue-reader.ts";
import { type IncomingMessage, routeMessage } from "../routing/route-message.ts";

export interface PoisonOutcome {
  /** The poison queue it was read from. */
  queue: string;
  /** Where it was dead-lettered from, and why (x-first-death-queue, x-first-death-reason). */
  from: string;
  reason: string;
  outcome: "enqueued" | "dead-lettered" | "ignored" | "unroutable" | "failed";
  /** The job added, why it was ignored, or why it stays. */
  detail: string;
  /** Headers the reader could not keep. */
  droppedHeaders: string[];
}

export interface PoisonReplaySummary {
  dryRun: boolean;
  /** Poison queues found (a queue appears once its bridge has connected). */
  queues: Array<{ queue: string; connection: string; messages: number; missing: boolean }>;
  outcomes: PoisonOutcome[];
}

interface DeathRecord {
  queue?: unknown;
  "routing-keys"?: unknown;
}

export interface PoisonReplayOptions {
  dryRun?: boolean;
  /** Awaited after each add, before its message is acked (REDIS_DURABILITY=replicas:N: WAIT). */
  afterAdd?: () => Promise<void>;
}

export async function replayPoison(config: Config, queues: Queues, options: PoisonReplayOptions = {}): Promise<PoisonReplaySummary> {
  const feeds = pulseFeeds(config);
  const summary: PoisonReplaySummary = { dryRun: Boolean(options.dryRun), queues: [], outcomes: [] };
  // One poison queue per connection (and user); feeds of one connection share it.
  const poisonQueues = new Map<string, PulseFeed>();
  for (const feed of feeds) if (!poisonQueues.has(`${feed.url} ${feed.poisonQueue}`)) poisonQueues.set(`${feed.url} ${feed.poisonQueue}`, feed);

  for (const poison of poisonQueues.values()) {
    const reader = readQueue({
      url: poison.url,
      queue: poison.poisonQueue,
      connectionName: `pulse-bridge replay --poison ${poison.poisonQueue}`,
      mode: "snapshot",
      onMessage: async (message) => {
        const outcome = await replayOne(message, poison, feeds, config, queues, options);
        summary.outcomes.push(outcome);
        return !options.dryRun && outcome.outcome !== "unroutable" && outcome.outcome !== "failed";
      },
    });
    const result = await reader.done;
    summary.queues.push({ queue: poison.poisonQueue, connection: poison.connection, messages: result.read, missing: result.missing });
  }
  return summary;
}

async function replayOne(
  message: ReadMessage & { content: Buffer },
  poison: PulseFeed,
  feeds: PulseFeed[],
  config: Config,
  queues: Queues,
  { dryRun, afterAdd }: PoisonReplayOptions,
): Promise<PoisonOutcome> {
  const from = typeof message.headers["x-first-death-queue"] === "string" ? message.headers["x-first-death-queue"] : "";
  const reason = typeof message.headers["x-first-death-reason"] === "string" ? message.headers["x-first-death-reason"] : "unknown";
  const base = { queue: poison.poisonQueue, from, reason, droppedHeaders: message.dropped };
  const feed = feeds.find((f) => f.url === poison.url && (f.queue === from || f.legacyQueue === from));
  if (!feed)
    return {
      ...base,
      outcome: "unroutable",
      detail: `dead-lettered from ${JSON.stringify(from)}, not a queue of this configuration: left in the poison queue`,
    };

  // RabbitMQ records where the message was published before it died: the
  // exchange in x-first-death-exchange, the routing keys in x-death.
  const deaths = Array.isArray(message.headers["x-death"]) ? (message.headers["x-death"] as DeathRecord[]) : [];
  const death = deaths.find((d) => d.queue === from) ?? deaths.at(-1);
  const routingKeys = Array.isArray(death?.["routing-keys"]) ? (death["routing-keys"] as unknown[]) : [];
  const firstExchange = message.headers["x-first-death-exchange"];
  const incoming: IncomingMessage = {
    feed,
    exchange: typeof firstExchange === "string" ? firstExchange : message.exchange,
    routingKey: typeof routingKeys[0] === "string" ? routingKeys[0] : message.routingKey,
    content: message.content,
    headers: message.headers,
    redelivered: true,
  };
  let decision: ReturnType<typeof routeMessage>;
  try {
    decision = routeMessage(incoming, config);
  } catch (error) {
    return { ...base, outcome: "failed", detail: `routing failed: ${(error as Error).message}: left in the poison queue` };
  }
  if (decision.action === "ignore") return { ...base, outcome: "ignored", detail: decision.reason };
  if (!dryRun) {
    await addJob(queues, decision.job);
    await afterAdd?.();
  }
  return decision.action === "dead-letter"
    ? { ...base, outcome: "dead-lettered", detail: `dead-letter ${decision.job.opts.jobId}: ${decision.job.data.reason}` }
    : { ...base, outcome: "enqueued", detail: `${decision.job.queue} ${decision.job.opts.jobId}` };
}
