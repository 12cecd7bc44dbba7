import type { Config } from "../core/config.ts";

/**
 * What every command shares: the configuration, loaded (and validated) on
 * first use. The config module (and zod with it) is imported only then, so
 * `--help` and argument errors never load it.
 */
export interface CliContext {
  config(): Promise<Config>;
}

export function createCliContext(env: Record<string, string | undefined> = process.env): CliContext {
  let config: Promise<Config> | undefined;
  return { config: () => (config ??= import("../core/config.ts").then(({ loadConfig }) => loadConfig(env))) };
}
