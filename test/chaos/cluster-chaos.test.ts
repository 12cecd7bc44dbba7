/**
 * The short chaos run against a three-master Redis Cluster (no replicas):
 * every fault of the suite, the Redis one being the SIGKILL of the master
 * that serves the run's BullMQ hash tag, down 10 s, then restarted from its
 * nodes.conf and AOF. The processes run REDIS_DURABILITY=fsync (the default;
 * every master persists each write before it answers) with a `{…}` BullMQ
 * prefix. The repository lock lives on the Cluster too: no overlapping syncs
 * is part of the verdict. `npm run chaos -- --redis cluster` is the long one.
 */
import { expect, it } from "vitest";
import { expectLedgerKept, runReportedChaos, SHORT_RUN } from "../support/chaos-run.ts";

it("loses nothing and duplicates nothing on Redis Cluster under every fault, a master's loss included", async () => {
  const { result, context } = await runReportedChaos("Redis Cluster", {
    redis: "cluster",
    messages: 300,
    rate: 50,
    seed: 7,
    ...SHORT_RUN,
  });
  expect(result.faults.length, context).toBe(8);
  expect(result.faults.find((f) => f.name.startsWith("Redis Cluster"))?.detail, context).toMatch(/^SIGKILL cluster node/);
  expectLedgerKept(result, context);
  expect(result.verdict.syncRuns, context).toBeGreaterThan(0);
  expect(result.ok, context).toBe(true);
}, 240_000);
