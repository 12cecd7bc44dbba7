/**
 * What every chaos test does around the harness: the real processes need
 * dist/ (CI builds it before the tests), the verdict table is printed on
 * success too (CI logs then hold the figures of every run), and a failure
 * message carries the table and the run's progress lines, which say which
 * fault broke what.
 */
import { existsSync } from "node:fs";
import { expect } from "vitest";
import { type ChaosOptions, type ChaosResult, formatResult, runChaos } from "../../chaos/harness.ts";
import { CLI } from "../../chaos/processes.ts";

/** The settings every CI-sized run shares; each test adds its shape. */
export const SHORT_RUN = { redisDownMs: 10_000, drainTimeoutMs: 90_000, pushesPerRepository: 5 } as const;

export async function runReportedChaos(label: string, options: Omit<ChaosOptions, "report">): Promise<{ result: ChaosResult; context: string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (CI does)`);
  const lines: string[] = [];
  const result = await runChaos({ ...options, report: (line) => lines.push(line) });
  const table = formatResult(result);
  console.log(`chaos (${label})\n${table}`);
  return { result, context: `${table}\n${lines.join("\n")}` };
}

/** The ledger's promise: nothing lost, nothing twice, nothing stuck, no overlapping syncs, no process died, every role resumed. */
export function expectLedgerKept(result: ChaosResult, context: string): void {
  expect(result.verdict.lost, context).toEqual([]);
  expect(result.verdict.duplicatedRows, context).toBe(0);
  expect(result.verdict.stuck, context).toEqual({});
  expect(result.verdict.overlappingSyncs, context).toBe(0);
  expect(result.crashes, context).toEqual([]);
  expect(result.resumed.ok, context).toBe(true);
}
