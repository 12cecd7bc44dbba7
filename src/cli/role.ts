/**
 * Runs a long-lived role (bridge, worker, dashboard, start): logger, ordered
 * shutdown on SIGTERM/SIGINT, and a promise that resolves once shut down.
 */
import type { Config } from "../core/config.ts";
import { Lifecycle } from "../core/lifecycle.ts";
import { createLogger, type Logger } from "../core/log.ts";

export interface RoleContext {
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
}

export async function runRole(config: Config, role: string, start: (context: RoleContext) => Promise<void>): Promise<void> {
  const log = createLogger(config.logLevel, role);
  const lifecycle = new Lifecycle(log);
  lifecycle.handleSignals();
  const stopped = new Promise<void>((resolve) => lifecycle.signal.addEventListener("abort", () => resolve(), { once: true }));
  try {
    await start({ config, log, lifecycle });
  } catch (error) {
    log.error({ err: error }, `${role} failed to start`);
    await lifecycle.shutdown("start failed");
    throw error;
  }
  await stopped;
  await lifecycle.shutdown();
}
