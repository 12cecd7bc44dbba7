/**
 * The Queue API stand-in of bench/tc-ingest.ts, in a process of its own (as
 * Taskcluster is elsewhere), so that its CPU time does not count against
 * the worker's event loop. Started with IPC: it prepares JOBS + WARMUP
 * realistic runs, sends `{ rootUrl, jobs }` and serves until told "close".
 */
import { startQueueApiStandIn } from "../src/stand-ins/queue-api-server.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, standInTask, tcJob } from "../test/tc-ingest/fixtures.ts";

const count = Number(process.env.STAND_IN_RUNS ?? 0);
const standIn = await startQueueApiStandIn({ latencyMs: Number(process.env.LATENCY_MS ?? 20) });
const geckoStrings = hex40();
const jobs = Array.from({ length: count }, () => {
  const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings, de: hex40(), fr: hex40() })) });
  standIn.addTask(task);
  return tcJob(standIn.rootUrl, task);
});
process.on("message", (message) => {
  if (message === "close") void standIn.close().then(() => process.exit(0));
});
process.on("disconnect", () => process.exit(0));
process.send!({ rootUrl: standIn.rootUrl, jobs });
