/** tc-ingest's own metrics, next to the job outcome metrics every pool has (src/core/metrics.ts). */
import { Counter } from "prom-client";
import { registry } from "../../core/metrics.ts";

export const ingestedBuilds = new Counter({
  name: "pulse_bridge_tc_ingest_builds_total",
  help: "Taskcluster runs stored as a Build, by whether they published elmo.json and by run state",
  labelNames: ["elmo_json", "state"] as const,
  registers: [registry],
});

export const ingestedComparisons = new Counter({
  name: "pulse_bridge_tc_ingest_comparisons_total",
  help: "Comparisons stored (re-ingests count again)",
  registers: [registry],
});
