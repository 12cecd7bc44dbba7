import type { Command } from "commander";
import { requireTools } from "../core/prerequisites.ts";
import { POOL_NAMES, POOLS, type PoolName } from "../jobs/pools.ts";
import { positiveInteger } from "./argument-parsers.ts";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export function registerWorker(program: Command, context: CliContext): void {
  program
    .command("worker")
    .description("run one worker pool")
    .argument("<pool>", `the pool: ${POOL_NAMES.join(" or ")}`)
    .option("--concurrency <n>", "jobs carried out at once by this process", positiveInteger)
    .action(async (pool: string, options: { concurrency?: number }) => {
      const load = POOLS[pool as PoolName];
      if (!load) throw new Error(`unknown pool "${pool}" (known: ${POOL_NAMES.join(", ")})`);
      if (pool === "hg-sync") requireTools(["hg", "git"], "worker hg-sync");
      const definition = await load();
      await runRole(await context.config(), `worker ${pool}`, async ({ config, log, lifecycle }) => {
        const { startPool } = await import("../jobs/start-pool.ts");
        await startPool(definition, { config, log, lifecycle, concurrency: options.concurrency });
      });
    });
}
