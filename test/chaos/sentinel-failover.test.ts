/**
 * Redis behind Sentinel, failing over mid-stream: the real processes
 * (`node dist/cli.js`, built by CI before the tests) stream messages into
 * both pools while the master is SIGKILLed three times (the sentinels promote
 * the replica each time; the killed server comes back as the new replica).
 * The bridge runs REDIS_DURABILITY=replicas:1, as it must through Sentinel.
 * `npm run chaos -- --redis sentinel` is the long one.
 */
import { expect, it } from "vitest";
import { expectLedgerKept, runReportedChaos, SHORT_RUN } from "../support/chaos-run.ts";

it("loses nothing and duplicates nothing across three Sentinel failovers, and every role resumes by itself", async () => {
  const { result, context } = await runReportedChaos("Sentinel failovers", {
    redis: "sentinel",
    failovers: 3,
    faults: "redis",
    // About 40 s of stream: the three failovers (each ~10 s with the replica's return) all fall inside it.
    messages: 500,
    rate: 12,
    seed: 21,
    ...SHORT_RUN,
  });
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
  expectLedgerKept(result, context);
  expect(result.ok, context).toBe(true);
}, 240_000);
