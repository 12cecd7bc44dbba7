/**
 * Every role in one process, for a single machine (`pulse-bridge start`, the demo).
 *
 * Opening order: migrate → database → dashboard → worker pools → webhook
 * receiver (only when GITHUB_WEBHOOK_SECRET is set) → bridge.
 * Shutdown runs in reverse (lifecycle.defer): the bridge stops consuming and
 * acks what Redis already has, the pools stop taking jobs and finish the
 * active ones, then the dashboard and the database go. A job still running
 * at the deadline is not lost: its lock expires and the next start (or any
 * other worker) runs it again.
 */
import { type BridgeHandle, startBridge } from "../bridge/bridge.ts";
import type { Config } from "../core/config.ts";
import type { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";
import { diffBackends } from "../dashboard/extras.ts";
import { type DashboardHandle, startDashboard } from "../dashboard/server.ts";
import { trackedGitRepository } from "../jobs/hg-sync/tracked-git-repository.ts";
import { POOL_NAMES, POOLS, type PoolName } from "../jobs/pools.ts";
import { startPool } from "../jobs/start-pool.ts";
import { migrate } from "../storage/migrate.ts";
import { openDatabase } from "../storage/prisma.ts";
import { startWebhookReceiver, type WebhookHandle } from "../webhook/receiver.ts";

export interface AllRoles {
  dashboard: DashboardHandle;
  bridge: BridgeHandle;
  pools: PoolName[];
  /** Present when GITHUB_WEBHOOK_SECRET is set. */
  webhook?: WebhookHandle;
}

export async function startAllRoles({ config, log, lifecycle }: { config: Config; log: Logger; lifecycle: Lifecycle }): Promise<AllRoles> {
  const applied = await migrate(config.database.url);
  if (applied.length) log.info({ applied }, "migrations applied");
  const db = openDatabase(config.database);
  lifecycle.defer("database", () => db.$disconnect());

  const dashboard = await startDashboard({ config, log, lifecycle, db, backends: diffBackends() });
  const pools: PoolName[] = [];
  for (const name of POOL_NAMES) {
    await startPool(await POOLS[name](), { config, log, lifecycle, db });
    pools.push(name);
  }
  const webhook = config.webhook.secret ? await startWebhookReceiver({ config, log, lifecycle, isTracked: trackedGitRepository(db) }) : undefined;
  // Last, so that it is the first to stop: no new jobs while the pools drain.
  const bridge = await startBridge({ config, log, lifecycle });
  log.info({ dashboard: dashboard.url, pools, webhook: webhook?.url }, "all roles started");
  return { dashboard, bridge, pools, ...(webhook ? { webhook } : {}) };
}
