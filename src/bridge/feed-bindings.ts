/**
 * What each of our Pulse queues is bound to (docs/ARCHITECTURE.md, "One message"). hgpushes and
 * github routing keys are repository paths containing `/` (one topic word),
 * so they are bound with `#` and filtered in code. Task messages are bound on
 * the custom route but arrive with their primary routing key (routes travel
 * in the CC header).
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

/** Metrics label and log field: the feed kind, suffixed with an extra source's name. */
export function feedSource(feed: PulseFeed): string {
  return feed.connection === "pulse" ? feed.kind : `${feed.kind}-${feed.connection}`;
}
