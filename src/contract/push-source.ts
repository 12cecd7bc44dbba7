/**
 * How a git push job was learned: through Pulse or through our own GitHub
 * webhook receiver (src/webhook). Both build the same job (same id for the
 * same GitHub delivery); the receiver marks the original message it keeps
 * with WEBHOOK_CONNECTION, so the worker can record the push's source.
 */
import type { GitPushJob } from "./contracts.ts";

/** `OriginalMessage.connection` of a job built by the webhook receiver (Pulse jobs name a broker connection). */
export const WEBHOOK_CONNECTION = "github-webhook";

export function gitPushSource(push: GitPushJob): "pulse" | "webhook" {
  return push.message.connection === WEBHOOK_CONNECTION ? "webhook" : "pulse";
}
