/**
 * The short chaos run with every process's DATABASE_URL through a private
 * PgBouncer in transaction mode (migrations stay direct): every fault of the
 * suite, pg_terminate_backend included (it cuts the bouncer's server
 * connections), and PostgreSQL never sees more server connections than the
 * bouncer's pool. `npm run chaos -- --pgbouncer` is the long one.
 */
import { expect, it } from "vitest";
import { expectLedgerKept, runReportedChaos, SHORT_RUN } from "../support/chaos-run.ts";

const BOUNCER_POOL = 5;
const DATABASE_POOL_SIZE = 4;

it("loses nothing and duplicates nothing through PgBouncer under every fault, within its server pool", async () => {
  const { result, context } = await runReportedChaos("through PgBouncer", {
    pgbouncer: { poolSize: BOUNCER_POOL },
    databasePoolSize: DATABASE_POOL_SIZE,
    messages: 300,
    rate: 50,
    seed: 7,
    ...SHORT_RUN,
  });
  expect(result.faults.length, context).toBe(8);
  expectLedgerKept(result, context);
  const { peaks, clientBudget } = result.connections;
  // 3 hg-sync + 2 tc-ingest processes × DATABASE_POOL_SIZE.
  expect(clientBudget).toBe(5 * DATABASE_POOL_SIZE);
  expect(peaks.bouncerServers, context).toBeGreaterThan(0);
  expect(peaks.bouncerServers, context).toBeLessThanOrEqual(BOUNCER_POOL);
  expect(peaks.processBackends, context).toBeGreaterThan(0);
  expect(peaks.processBackends, context).toBeLessThanOrEqual(BOUNCER_POOL);
  expect(peaks.bouncerClients, context).toBeLessThanOrEqual(clientBudget);
  expect(result.ok, context).toBe(true);
}, 240_000);
