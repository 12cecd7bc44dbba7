/**
 * A tc-ingest worker in a process of its own (forked with IPC by
 * hostile-senders.test.ts), so that its resident memory can be read from
 * /proc without the test's own allocations: configured from the environment
 * like `pulse-bridge worker tc-ingest`, one job at a time. Sends "ready" once
 * the pool runs; "stop" shuts it down.
 */
import { loadConfig } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import { tcIngestPool } from "../../src/jobs/tc-ingest/pool.ts";

const config = loadConfig(process.env);
const log = createLogger(config.logLevel, "memory-worker");
const lifecycle = new Lifecycle(log);
await startPool(tcIngestPool, { config, log, lifecycle, concurrency: 1 });
process.on("message", (message) => {
  if (message === "stop") void lifecycle.shutdown().finally(() => process.exit(0));
});
process.send!("ready");
