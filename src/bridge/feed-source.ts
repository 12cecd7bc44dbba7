/** How a feed is named in metrics labels and logs (its queues and bindings: src/pulse/feed-topology.ts). */
import type { PulseFeed } from "../core/config.ts";

/** Metrics label and log field: the feed kind, suffixed with an extra source's name. */
export function feedSource(feed: PulseFeed): string {
  return feed.connection === "pulse" ? feed.kind : `${feed.kind}-${feed.connection}`;
}
