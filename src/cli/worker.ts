import { InvalidArgumentError, type Command } from "commander";
import { startPool } from "../jobs/start-pool.ts";
import { POOLS } from "../jobs/pools.ts";
import type { QueueName } from "../contract/contracts.ts";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a whole number of at least 1");
  return n;
}

export function registerWorker(program: Command, context: CliContext): void {
  program
    .command("worker")
    .description("run one worker pool")
    .argument("<pool>", `the pool: ${Object.keys(POOLS).join(" or ") || "(none yet)"}`)
    .option("--concurrency <n>", "jobs carried out at once by this process", positiveInteger)
    .action(async (pool: string, options: { concurrency?: number }) => {
      const load = POOLS[pool as QueueName];
      if (!load) throw new Error(`unknown pool "${pool}" (known: ${Object.keys(POOLS).join(", ")})`);
      const definition = await load();
      await runRole(context.config(), `worker ${pool}`, async ({ config, log, lifecycle }) => {
        await startPool(definition as never, { config, log, lifecycle, concurrency: options.concurrency });
      });
    });
}
