/** hg-sync's own metrics, next to the job outcome metrics every pool has (src/core/metrics.ts). */
import { Counter } from "prom-client";
import { registry } from "../../core/metrics.ts";

export const changesetsStored = new Counter({
  name: "pulse_bridge_hg_sync_changesets_stored_total",
  help: "Changesets stored by hg-sync (new or placeholders filled in), by repository kind: hg, git",
  labelNames: ["kind"] as const,
  registers: [registry],
});
