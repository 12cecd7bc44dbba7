/**
 * Database connections of a chaos run, sampled while it runs: PostgreSQL's
 * backends of the run's database (pg_stat_activity, read over a connection to
 * the `postgres` database, so the sampler is not counted), those opened for
 * the role processes (their DATABASE_URL carries `application_name`), and,
 * with PgBouncer, its client and server connections of that database
 * (SHOW CLIENTS / SHOW SERVERS). The peaks are compared with the budget in
 * the verdict.
 */
import pg from "pg";
import type { PgBouncer } from "../test/support/pgbouncer.ts";
import { SERVICES } from "../test/support/test-environment.ts";

export interface ConnectionPeaks {
  /** Every backend of the run's database (processes, plus the harness's own direct connections). */
  backends: number;
  /** Backends with the processes' application_name. */
  processBackends: number;
  /** PgBouncer only: client connections (the processes' pools) and server connections to PostgreSQL. */
  bouncerClients?: number;
  bouncerServers?: number;
  samples: number;
}

export function watchConnections(options: { database: string; applicationName: string; bouncer?: PgBouncer; intervalMs?: number }) {
  const peak: ConnectionPeaks = { backends: 0, processBackends: 0, samples: 0, ...(options.bouncer ? { bouncerClients: 0, bouncerServers: 0 } : {}) };
  const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres`, application_name: "pb-chaos-sampler" });
  client.on("error", () => {});
  let running = true;
  const done = (async () => {
    await client.connect();
    try {
      while (running) {
        // A sample that fails (pg_terminate_backend of the run's connections hits only the
        // run's database, not this one; the bouncer may be busy) is skipped, not fatal.
        try {
          const { rows } = await client.query<{ total: number; processes: number }>(
            `SELECT count(*)::int AS total, (count(*) FILTER (WHERE application_name = $2))::int AS processes
               FROM pg_stat_activity WHERE datname = $1`,
            [options.database, options.applicationName],
          );
          peak.backends = Math.max(peak.backends, rows[0]!.total);
          peak.processBackends = Math.max(peak.processBackends, rows[0]!.processes);
          if (options.bouncer) {
            const ours = (rows: Record<string, unknown>[]) => rows.filter((row) => row.database === options.database).length;
            peak.bouncerClients = Math.max(peak.bouncerClients!, ours(await options.bouncer.admin("SHOW CLIENTS")));
            peak.bouncerServers = Math.max(peak.bouncerServers!, ours(await options.bouncer.admin("SHOW SERVERS")));
          }
          peak.samples++;
        } catch {}
        await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
      }
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return {
    peak,
    async stop(): Promise<ConnectionPeaks> {
      running = false;
      await done.catch(() => {});
      return peak;
    },
  };
}
