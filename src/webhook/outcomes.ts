/**
 * What the receiver answers, as a fixed set: each outcome has its HTTP status
 * and is the only label value of pulse_bridge_webhook_deliveries_total, so no
 * request can add a time series.
 *
 * GitHub counts any 2xx as delivered and anything else as failed (shown red
 * in the webhook's "Recent Deliveries", redeliverable from there or its API);
 * so everything we kept or deliberately drop is 2xx, and what we did not
 * keep is not.
 */
export const WEBHOOK_OUTCOMES = {
  /** A push of a tracked repository: its sync job is in Redis. */
  accepted: 202,
  /** The job of this delivery was already in Redis (a redelivery, or the same push seen through Pulse). */
  duplicate: 200,
  /** A push of a repository we do not track: acknowledged, counted, not cloned. */
  untracked: 200,
  /** An event other than push and ping. */
  "ignored-event": 200,
  /** GitHub's ping, sent when the webhook is created. */
  ping: 200,
  /** No X-Hub-Signature-256 header. */
  unsigned: 401,
  /** A signature that does not match the body and our secret. */
  "bad-signature": 401,
  /** A body above WEBHOOK_MAX_BYTES. */
  "too-large": 413,
  /** Signed, but not a push we can read: not JSON, wrong content type, missing delivery id, missing fields. */
  malformed: 400,
  /** Redis (or PostgreSQL) did not answer: nothing kept; GitHub shows the delivery as failed. */
  unavailable: 503,
} as const;

export type WebhookOutcome = keyof typeof WEBHOOK_OUTCOMES;
