/**
 * The short chaos run with every process's DATABASE_URL through a private
 * PgBouncer in transaction mode (migrations stay direct): every fault of the
 * suite, pg_terminate_backend included (it cuts the bouncer's server
 * connections), and PostgreSQL never sees more server connections than the
 * bouncer's pool. `npm run chaos -- --pgbouncer` is the long one.
 */
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { formatResult, runChaos } from "../../chaos/harness.ts";
import { CLI } from "../../chaos/processes.ts";

const BOUNCER_POOL = 5;
const DATABASE_POOL_SIZE = 4;

it("loses nothing and duplicates nothing through PgBouncer under every fault, within its server pool", async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (CI does)`);
  const lines: string[] = [];
  const result = await runChaos({
    pgbouncer: { poolSize: BOUNCER_POOL },
    databasePoolSize: DATABASE_POOL_SIZE,
    messages: 300,
    rate: 50,
    seed: 7,
    redisDownMs: 10_000,
    drainTimeoutMs: 90_000,
    pushesPerRepository: 5,
    report: (line) => lines.push(line),
  });
  const table = formatResult(result);
  console.log(`chaos (through PgBouncer)\n${table}`);
  const context = `${table}\n${lines.join("\n")}`;
  expect(result.faults.length, context).toBe(8);
  expect(result.verdict.lost, context).toEqual([]);
  expect(result.verdict.duplicatedRows, context).toBe(0);
  expect(result.verdict.stuck, context).toEqual({});
  expect(result.verdict.overlappingSyncs, context).toBe(0);
  expect(result.crashes, context).toEqual([]);
  expect(result.resumed.ok, context).toBe(true);
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
