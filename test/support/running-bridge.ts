/**
 * A bridge running in-process on a test's config, with what tests use around
 * it: a publisher on the local broker (exchanges declared as Pulse's
 * publishers would) and the BullMQ queues to read the jobs from.
 */

import { afterAll, beforeAll } from "vitest";
import { type BridgeHandle, type BridgeOptions, startBridge } from "../../src/bridge/bridge.ts";
import { closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import type { Config } from "../../src/core/config.ts";
import { createLogger, type Logger } from "../../src/core/log.ts";
import { createRedis } from "../../src/core/redis.ts";
import { declareExchanges, openPublisher, type Publisher } from "./pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "./test-environment.ts";
import { waitFor } from "./wait-for.ts";

export interface RunningBridge {
  bridge: BridgeHandle;
  publisher: Publisher;
  queues: Queues;
  close(): Promise<void>;
}

export async function startRunningBridge(
  config: Config,
  options: Partial<Omit<BridgeOptions, "config" | "log">> & {
    log?: Logger;
    /** Declare every exchange first (default); false to let the test declare what it wants. */
    declare?: boolean;
    /** Before starting the bridge, with the publisher open (e.g. to declare some exchanges). */
    beforeStart?: (publisher: Publisher) => Promise<void>;
  } = {},
): Promise<RunningBridge> {
  const { log = createLogger(config.logLevel, "test-bridge"), declare = true, beforeStart, ...bridgeOptions } = options;
  const publisher = await openPublisher();
  if (declare) await declareExchanges(publisher, config);
  await beforeStart?.(publisher);
  const bridge = await startBridge({ config, log, ...bridgeOptions });
  if (declare) await waitFor("the bridge to consume every feed", () => bridge.status().feeds.every((f) => f.consuming));
  const redis = createRedis(config.redis.url, "worker");
  const queues = openQueues(redis, config.redis.prefix);
  return {
    bridge,
    publisher,
    queues,
    async close() {
      await bridge.close();
      await publisher.close();
      await closeQueues(queues);
      redis.disconnect();
    },
  };
}

type RunningBridgeOptions = Parameters<typeof startRunningBridge>[1];

/** What useRunningBridge gives a test file: filled in by its beforeAll. */
export interface RunningBridgeSetting extends Omit<RunningBridge, "close"> {
  env: TestEnvironment;
  config: Config;
}

/**
 * The usual setting of a bridge test file, set up in beforeAll and torn down
 * in afterAll: its own test environment (with `overrides` of the
 * environment) and a bridge running on it.
 */
export function useRunningBridge(name: string, overrides: Record<string, string> = {}, options: RunningBridgeOptions = {}): RunningBridgeSetting {
  const setting = {} as RunningBridgeSetting;
  let running: RunningBridge | undefined;
  beforeAll(async () => {
    setting.env = await createTestEnvironment(name);
    setting.config = setting.env.configWith(overrides);
    running = await startRunningBridge(setting.config, options);
    Object.assign(setting, { bridge: running.bridge, publisher: running.publisher, queues: running.queues });
  });
  afterAll(async () => {
    await running?.close();
    await setting.env?.cleanup();
  });
  return setting;
}
