/**
 * What the bridge declares and binds on the broker for each of our Pulse
 * queues (docs/ARCHITECTURE.md, "One message"): the exchanges and patterns
 * bound, and the arguments of the feed and poison queues. Pure, so that the
 * bridge (which declares them) and `pulse-bridge doctor` (which checks them)
 * read one truth.
 *
 * hgpushes and github routing keys are repository paths containing `/` (one
 * topic word), so they are bound with `#` and filtered in code. Task messages
 * are bound on the custom route but arrive with their primary routing key
 * (routes travel in the CC header).
 */
import type { Config, PulseFeed } from "../core/config.ts";

export interface FeedBinding {
  exchange: string;
  pattern: string;
}

export function feedBindings(feed: PulseFeed, config: Config): FeedBinding[] {
  const { exchanges, tcRoute } = config.pulse;
  switch (feed.kind) {
    case "hgpushes":
      return [{ exchange: exchanges.hgpushes, pattern: "#" }];
    case "github":
      return [
        { exchange: exchanges.githubWebhooks, pattern: "#" },
        { exchange: exchanges.taskclusterGithubPush, pattern: "#" },
      ];
    case "taskcluster":
      return [
        { exchange: exchanges.taskCompleted, pattern: `route.${tcRoute}` },
        { exchange: exchanges.taskFailed, pattern: `route.${tcRoute}` },
      ];
  }
}

/**
 * Our queues are quorum queues (durable by nature) so that RabbitMQ counts
 * deliveries: past `x-delivery-limit` redeliveries a message is dead-lettered
 * to the poison exchange. Messages dropped from the head when the queue is
 * over `x-max-length` are dead-lettered there too (reason `maxlen`).
 */
export function feedQueueArguments(feed: PulseFeed, config: Config): Record<string, unknown> {
  return {
    "x-queue-type": "quorum",
    "x-max-length": config.pulse.maxLength,
    "x-delivery-limit": config.pulse.deliveryLimit,
    "x-dead-letter-exchange": feed.poisonExchange,
  };
}

/** The poison queue: classic and bounded. */
export function poisonQueueArguments(config: Config): Record<string, unknown> {
  return { "x-max-length": config.pulse.poisonMaxLength };
}
