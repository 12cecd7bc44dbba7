/**
 * A real `node dist/cli.js bridge` process (built by `npm run build`, as CI
 * does before testing), with its output kept for assertions and for the
 * message of a failing test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { createRedis } from "../../src/core/redis.ts";
import { declareExchanges, openPublisher, type Publisher } from "./pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "./test-environment.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const CLI_PATH = `${root}dist/cli.js`;

export interface BridgeProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  logs(): string;
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
}

/** Fails with a clear message when the CLI has not been built. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first (CI does)`);
}

export function spawnBridgeProcess(env: Record<string, string>): BridgeProcess {
  const child = spawn(process.execPath, [CLI_PATH, "bridge"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, logs: () => output, exited };
}

/** What useBridgeProcessSetting gives a test file: filled in by its beforeAll. */
export interface BridgeProcessSetting {
  env: TestEnvironment;
  /** On the local broker, with every exchange of the test's config declared. */
  publisher: Publisher;
  /** The BullMQ queues, to read the jobs a bridge process adds. */
  queues: Queues;
}

/**
 * The setting of a test file that runs real bridge processes, set up in
 * beforeAll (failing at once when the CLI is not built) and torn down in
 * afterAll. `built: false` skips the build check (a test given another CLI).
 */
export function useBridgeProcessSetting(name: string, { built = true }: { built?: boolean } = {}): BridgeProcessSetting {
  const setting = {} as BridgeProcessSetting;
  let close = async () => {};
  beforeAll(async () => {
    if (built) assertCliBuilt();
    setting.env = await createTestEnvironment(name);
    setting.publisher = await openPublisher();
    await declareExchanges(setting.publisher, setting.env.config);
    const redis = createRedis(setting.env.config.redis.url, "worker");
    setting.queues = openQueues(redis, setting.env.config.redis.prefix);
    close = async () => {
      await closeQueues(setting.queues);
      redis.disconnect();
    };
  });
  afterAll(async () => {
    await setting.publisher?.close();
    await close();
    await setting.env?.cleanup();
  });
  return setting;
}
