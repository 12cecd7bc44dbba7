/**
 * Redis behind Sentinel, failing over mid-stream: the real processes
 * (`node dist/cli.js`, built by CI before the tests) stream messages into
 * both pools while the master is SIGKILLed three times (the sentinels promote
 * the replica each time; the killed server comes back as the new replica).
 * The bridge runs REDIS_DURABILITY=replicas:1, as it must through Sentinel.
 * `npm run chaos -- --redis sentinel` is the long one.
 */
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { formatResult, runChaos } from "../../chaos/harness.ts";
import { CLI } from "../../chaos/processes.ts";

it("loses nothing and duplicates nothing across three Sentinel failovers, and every role resumes by itself", async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (CI does)`);
  const lines: string[] = [];
  const result = await runChaos({
    redis: "sentinel",
    failovers: 3,
    faults: "redis",
    // About 40 s of stream: the three failovers (each ~10 s with the replica's return) all fall inside it.
    messages: 500,
    rate: 12,
    seed: 21,
    redisDownMs: 10_000,
    drainTimeoutMs: 90_000,
    pushesPerRepository: 5,
    report: (line) => lines.push(line),
  });
  const table = formatResult(result);
  console.log(`chaos (Sentinel failovers)\n${table}`);
  const context = `${table}\n${lines.join("\n")}`;
  const failovers = result.faults.filter((f) => f.name.startsWith("Redis master SIGKILLed"));
  expect(failovers.length, context).toBe(3);
  expect(
    failovers.map((f) => f.detail).filter((d) => d.startsWith("FAILED")),
    context,
  ).toEqual([]);
  // Both servers were master in turn, and each kill came while the stream was still being published
  // (before the ledger's tail, which waits for the last fault to end).
  expect(new Set(failovers.map((f) => /SIGKILL master on port (\d+)/.exec(f.detail)?.[1])).size, context).toBe(2);
  const publishedAtKill = failovers.map((f) => Number(/\((\d+) messages published when it began\)/.exec(f.detail)?.[1]));
  for (const published of publishedAtKill) expect(published, context).toBeGreaterThan(0);
  for (const published of publishedAtKill) expect(published, context).toBeLessThan(result.messagesSent - result.resumed.messages - result.resumed.newPushes);
  expect(result.verdict.lost, context).toEqual([]);
  expect(result.verdict.duplicatedRows, context).toBe(0);
  expect(result.verdict.stuck, context).toEqual({});
  expect(result.verdict.overlappingSyncs, context).toBe(0);
  expect(result.crashes, context).toEqual([]);
  expect(result.resumed.ok, context).toBe(true);
  expect(result.ok, context).toBe(true);
}, 240_000);
