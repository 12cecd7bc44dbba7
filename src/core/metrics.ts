/**
 * Prometheus metrics (README, "Metrics and alerts"). One registry per process; every role
 * registers into it and the dashboard (or a role's own /metrics) serves it.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "pulse_bridge_" });

export const messagesConsumed = new Counter({
  name: "pulse_bridge_messages_consumed_total",
  help: "Pulse messages received by the bridge",
  labelNames: ["source"] as const,
  registers: [registry],
});
export const messagesEnqueued = new Counter({
  name: "pulse_bridge_messages_enqueued_total",
  help: "Pulse messages turned into a BullMQ job and acked",
  labelNames: ["source", "queue"] as const,
  registers: [registry],
});
export const messagesDeadLettered = new Counter({
  name: "pulse_bridge_messages_dead_lettered_total",
  help: "Pulse messages that were invalid and went to the dead-letter queue",
  labelNames: ["source"] as const,
  registers: [registry],
});
// Label values are fixed sets chosen by us, never text from a message: a
// sender could otherwise add one time series per distinct value (`reason` is
// route-message.ts' IgnoreCategory; the free text goes to the log).
export const messagesIgnored = new Counter({
  name: "pulse_bridge_messages_ignored_total",
  help: "Well-formed Pulse messages of a kind we do not handle (acked), by fixed reason: hg-obsolete, hg-unknown-type, github-other-event",
  labelNames: ["source", "reason"] as const,
  registers: [registry],
});
export const bridgePaused = new Gauge({
  name: "pulse_bridge_bridge_paused",
  help: "1 while the bridge has stopped consuming because Redis is unreachable",
  registers: [registry],
});
export const brokerReconnects = new Counter({
  name: "pulse_bridge_broker_reconnects_total",
  help: "Reconnections to a Pulse broker",
  labelNames: ["source"] as const,
  registers: [registry],
});
export const jobDuration = new Histogram({
  name: "pulse_bridge_job_duration_seconds",
  help: "Duration of job attempts",
  labelNames: ["queue", "outcome"] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});
export const jobOutcomes = new Counter({
  name: "pulse_bridge_job_outcomes_total",
  help: "Job attempt outcomes",
  labelNames: ["queue", "outcome"] as const,
  registers: [registry],
});
// The webhook receiver's outcomes, a fixed set (src/webhook/outcomes.ts);
// nothing from a request becomes a label.
export const webhookDeliveries = new Counter({
  name: "pulse_bridge_webhook_deliveries_total",
  help: "GitHub webhook requests by outcome: accepted, duplicate, untracked, ignored-event, ping, bad-signature, unsigned, too-large, malformed, unavailable",
  labelNames: ["outcome"] as const,
  registers: [registry],
});
export const webhookDuration = new Histogram({
  name: "pulse_bridge_webhook_duration_seconds",
  help: "Time from a webhook request's last byte to its answer",
  labelNames: ["outcome"] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});
export const redisDurabilityOk = new Gauge({
  name: "pulse_bridge_redis_durability_ok",
  help: "1 when the bridge's Redis gives the guarantee REDIS_DURABILITY asks for (checked at start), 0 when it runs anyway (REDIS_DURABILITY_UNCHECKED)",
  registers: [registry],
});
