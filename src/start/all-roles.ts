/**
 * Every role in one process, for a single machine (`pulse-bridge start`, the demo).
 *
 * Opening order: migrate → database → dashboard → worker pools → bridge.
 * Shutdown runs in reverse (lifecycle.defer): the bridge stops consuming and
 * acks what Redis already has, the pools stop taking jobs and finish the
 * active ones, then the dashboard and the database go. A job still running
 * at the deadline is not lost: its lock expires and the next start (or any
 * other worker) runs it again.
 */
import { startBridge, type BridgeHandle } from "../bridge/bridge.ts";
import type { Config } from "../core/config.ts";
import { diffBackends } from "../dashboard/extras.ts";
import { startDashboard, type DashboardHandle } from "../dashboard/server.ts";
import { migrate } from "../storage/migrate.ts";
import { openDatabase } from "../storage/prisma.ts";
import type { QueueName } from "../contract/contracts.ts";
import { POOLS } from "../jobs/pools.ts";
import { startPool } from "../jobs/start-pool.ts";
import type { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";

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
