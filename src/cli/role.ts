/**
 * Runs a long-lived role (bridge, worker, dashboard, start): logger, ordered
 * shutdown on SIGTERM/SIGINT, and a promise that resolves once shut down.
 * Commands import their role's modules inside `start` (src/cli.ts says why):
 * it runs once the signal handlers are in place, and a failed import is
 * logged like any other failure to start.
 */
import type { Config } from "../core/config.ts";
import { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";

export interface RoleContext {
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
}

export async function runRole(config: Config, role: string, start: (context: RoleContext) => Promise<void>): Promise<void> {
  const { createLogger } = await import("../core/log.ts");
  const log = createLogger(config.logLevel, role);
  const lifecycle = new Lifecycle(log);
  lifecycle.handleSignals();
  // First registered, so released last: the roles' final spans are exported.
  const { startTracing } = await import("../core/tracing.ts");
  const tracing = await startTracing({ endpoint: config.tracing.endpoint, role, log });
  if (tracing) lifecycle.defer("traces", () => tracing.close());
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
