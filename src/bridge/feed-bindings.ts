/**
 * What each of our Pulse queues is bound to: `src/pulse/feed-topology.ts`
 * (docs/ARCHITECTURE.md, "One message"), re-exported for the bridge.
 */
import type { PulseFeed } from "../core/config.ts";

// The pure topology moved to src/pulse (the doctor checks what the bridge declares).
export { type FeedBinding, feedBindings } from "../pulse/feed-topology.ts";

/** Metrics label and log field: the feed kind, suffixed with an extra source's name. */
export function feedSource(feed: PulseFeed): string {
  return feed.connection === "pulse" ? feed.kind : `${feed.kind}-${feed.connection}`;
}
