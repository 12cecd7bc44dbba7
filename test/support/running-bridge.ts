/**
 * A bridge running in-process on a test's config, with what tests use around
 * it: a publisher on the local broker (exchanges declared as Pulse's
 * publishers would) and the BullMQ queues to read the jobs from.
 */
import { startBridge, type BridgeHandle, type BridgeOptions } from "../../src/bridge/bridge.ts";
import type { Config } from "../../src/core/config.ts";
import { closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { createLogger, type Logger } from "../../src/core/log.ts";
import { createRedis } from "../../src/core/redis.ts";
import { declareExchanges, openPublisher, type Publisher } from "./pulse.ts";
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
