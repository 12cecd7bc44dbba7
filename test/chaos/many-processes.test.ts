/**
 * Beyond one process per role: 2 bridges, 4 `worker hg-sync` and 4
 * `worker tc-ingest` against Sentinel-backed Redis (one failover in the
 * stream) and one PgBouncer in transaction mode. Nothing lost, nothing
 * duplicated, and the database connections stay within their budget:
 * PostgreSQL sees at most the bouncer's pool for the processes (plus the
 * harness's own direct connections: its Prisma pool of 5 and the verifier's
 * 1), and the bouncer at most processes × DATABASE_POOL_SIZE clients.
 * `npm run chaos -- --redis sentinel --pgbouncer --bridges 2 --hg-sync 4 --tc-ingest 4` is the long one.
 */
import { expect, it } from "vitest";
import { expectLedgerKept, runReportedChaos, SHORT_RUN } from "../support/chaos-run.ts";

const BOUNCER_POOL = 8;
const DATABASE_POOL_SIZE = 4;
const PROCESSES = { bridges: 2, hgSync: 4, tcIngest: 4 };

it("runs 2 bridges, 4 hg-sync and 4 tc-ingest processes on Sentinel and PgBouncer: nothing lost or duplicated, connections within budget", async () => {
  const { result, context } = await runReportedChaos("many processes, Sentinel + PgBouncer", {
    redis: "sentinel",
    failovers: 1,
    faults: "redis",
    pgbouncer: { poolSize: BOUNCER_POOL },
    databasePoolSize: DATABASE_POOL_SIZE,
    processes: PROCESSES,
    messages: 400,
    rate: 20,
    seed: 31,
    ...SHORT_RUN,
  });
  expectLedgerKept(result, context);
  const { peaks, clientBudget, harnessDirect } = result.connections;
  expect(clientBudget).toBe((PROCESSES.hgSync + PROCESSES.tcIngest) * DATABASE_POOL_SIZE);
  expect(peaks.processBackends, context).toBeGreaterThan(0);
  expect(peaks.processBackends, context).toBeLessThanOrEqual(BOUNCER_POOL);
  expect(peaks.backends, context).toBeLessThanOrEqual(BOUNCER_POOL + harnessDirect);
  expect(peaks.bouncerServers, context).toBeLessThanOrEqual(BOUNCER_POOL);
  expect(peaks.bouncerClients, context).toBeGreaterThan(0);
  expect(peaks.bouncerClients, context).toBeLessThanOrEqual(clientBudget);
  expect(result.ok, context).toBe(true);
}, 240_000);
