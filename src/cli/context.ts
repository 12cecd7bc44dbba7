import { loadConfig, type Config } from "../core/config.ts";

/** What every command shares: the configuration, loaded (and validated) on first use. */
export interface CliContext {
  config(): Config;
}

export function createCliContext(env: Record<string, string | undefined> = process.env): CliContext {
  let config: Config | undefined;
  return { config: () => (config ??= loadConfig(env)) };
}
