/**
 * `pulse-bridge start`: every role in one process, for a single machine.
 *
 * Opening order: migrate → database → dashboard → worker pools → bridge.
 * Shutdown runs in reverse (lifecycle.defer): the bridge stops consuming and
 * acks what Redis already has, the pools stop taking jobs and finish the
 * active ones, then the dashboard and the database go. A job still running
 * at the deadline is not lost: its lock expires and the next start (or any
 * other worker) runs it again.
 */
import type { Command } from "commander";
import { startBridge, type BridgeHandle } from "../bridge/bridge.ts";
import type { Config } from "../config.ts";
import { diffBackends } from "../dashboard/extras.ts";
import { startDashboard, type DashboardHandle } from "../dashboard/server.ts";
import { migrate } from "../db/migrate.ts";
import { openDatabase } from "../db/prisma.ts";
import type { QueueName } from "../jobs/contracts.ts";
import { POOLS } from "../jobs/pools.ts";
import { startPool } from "../jobs/start-pool.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../log.ts";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export interface AllRoles {
  dashboard: DashboardHandle;
  bridge: BridgeHandle;
  pools: QueueName[];
}

export async function startAllRoles({ config, log, lifecycle }: { config: Config; log: Logger; lifecycle: Lifecycle }): Promise<AllRoles> {
  const applied = await migrate(config.database.url);
  if (applied.length) log.info({ applied }, "migrations applied");
  const db = openDatabase(config.database.url);
  lifecycle.defer("database", () => db.$disconnect());

  const dashboard = await startDashboard({ config, log, lifecycle, db, backends: diffBackends() });
  const pools: QueueName[] = [];
  for (const [name, load] of Object.entries(POOLS) as Array<[QueueName, () => Promise<never>]>) {
    await startPool(await load(), { config, log, lifecycle, db });
    pools.push(name);
  }
  // Last, so that it is the first to stop: no new jobs while the pools drain.
  const bridge = await startBridge({ config, log, lifecycle });
  log.info({ dashboard: dashboard.url, pools }, "all roles started");
  return { dashboard, bridge, pools };
}

export function registerStart(program: Command, context: CliContext): void {
  program
    .command("start")
    .description("migrate, then run the bridge, every worker pool and the dashboard in one process (single machine)")
    .action(async () => {
      await runRole(context.config(), "start", async (role) => {
        await startAllRoles(role);
      });
    });
}
