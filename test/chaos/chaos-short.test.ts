/**
 * The short chaos run that CI runs: the real processes
 * (`node dist/cli.js`, built by CI before the tests), a few hundred messages,
 * every fault once, then the ledger check. `npm run chaos` is the long one.
 */
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { formatResult, runChaos } from "../../chaos/harness.ts";
import { CLI } from "../../chaos/processes.ts";

it("loses nothing and duplicates nothing under every fault of the chaos suite", async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (CI does)`);
  const lines: string[] = [];
  const result = await runChaos({
    messages: 300,
    rate: 50,
    seed: 7,
    redisDownMs: 10_000,
    drainTimeoutMs: 90_000,
    pushesPerRepository: 5,
    report: (line) => lines.push(line),
  });
  const table = formatResult(result);
  // Printed on success too: CI logs then hold the figures of every run.
  console.log(`chaos (short)\n${table}`);
  // The whole table in the failure message: it says which fault broke what.
  expect(result.faults.length, table).toBe(8);
  expect(result.verdict.lost, table).toEqual([]);
  expect(result.verdict.duplicatedRows, table).toBe(0);
  expect(result.verdict.stuck, table).toEqual({});
  expect(result.verdict.overlappingSyncs, table).toBe(0);
  expect(result.crashes, table).toEqual([]);
  expect(result.ok, `${table}\n${lines.join("\n")}`).toBe(true);
}, 240_000);
