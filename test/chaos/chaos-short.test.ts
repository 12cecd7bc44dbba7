/**
 * The short chaos run that CI runs: the real processes
 * (`node dist/cli.js`, built by CI before the tests), a few hundred messages,
 * every fault once, then the ledger check. `npm run chaos` is the long one.
 */
import { expect, it } from "vitest";
import { expectLedgerKept, runReportedChaos, SHORT_RUN } from "../support/chaos-run.ts";

it("loses nothing and duplicates nothing under every fault of the chaos suite", async () => {
  const { result, context } = await runReportedChaos("short", { messages: 300, rate: 50, seed: 7, ...SHORT_RUN });
  expect(result.faults.length, context).toBe(8);
  expectLedgerKept(result, context);
  expect(result.ok, context).toBe(true);
}, 240_000);
