/**
 * The short chaos run against a three-master Redis Cluster (no replicas):
 * every fault of the suite, the Redis one being the SIGKILL of the master
 * that serves the run's BullMQ hash tag, down 10 s, then restarted from its
 * nodes.conf and AOF. The processes run REDIS_DURABILITY=fsync (the default;
 * every master persists each write before it answers) with a `{…}` BullMQ
 * prefix. The repository lock lives on the Cluster too: no overlapping syncs
 * is part of the verdict. `npm run chaos -- --redis cluster` is the long one.
 */
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { formatResult, runChaos } from "../../chaos/harness.ts";
import { CLI } from "../../chaos/processes.ts";

it("loses nothing and duplicates nothing on Redis Cluster under every fault, a master's loss included", async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (CI does)`);
  const lines: string[] = [];
  const result = await runChaos({
    redis: "cluster",
    messages: 300,
    rate: 50,
    seed: 7,
    redisDownMs: 10_000,
    drainTimeoutMs: 90_000,
    pushesPerRepository: 5,
    report: (line) => lines.push(line),
  });
  const table = formatResult(result);
  console.log(`chaos (Redis Cluster)\n${table}`);
  const context = `${table}\n${lines.join("\n")}`;
  expect(result.faults.length, context).toBe(8);
  expect(result.faults.find((f) => f.name.startsWith("Redis Cluster"))?.detail, context).toMatch(/^SIGKILL cluster node/);
  expect(result.verdict.lost, context).toEqual([]);
  expect(result.verdict.duplicatedRows, context).toBe(0);
  expect(result.verdict.stuck, context).toEqual({});
  expect(result.verdict.syncRuns, context).toBeGreaterThan(0);
  expect(result.verdict.overlappingSyncs, context).toBe(0);
  expect(result.crashes, context).toEqual([]);
  expect(result.resumed.ok, context).toBe(true);
  expect(result.ok, context).toBe(true);
}, 240_000);
