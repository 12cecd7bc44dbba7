/**
 * What a tc-ingest worker's job-history sweep reads. Every 10 s one worker
 * re-checks the outcomes finished in the last minute or so (README,
 * "History"): on a busy queue thousands of jobs. It must read whole (the job
 * data carries the original Pulse message) only those no path has recorded
 * in JobRecord yet; reading and re-inserting all of them was the tc-ingest
 * workers' largest allocation burst in the soak (bench/soak.ts).
 *
 * The real tc-ingest pool ingests runs from the Queue API stand-in; BullMQ's
 * completed set (ids and finish times) is then matched against JobRecord.
 */
import { Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tcIngestJobRequest } from "../../src/contract/job-requests.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { unrecordedOutcomes } from "../../src/jobs/job-history.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import { tcIngestPool } from "../../src/jobs/tc-ingest/pool.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, standInTask, tcJob } from "./fixtures.ts";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test");
let env: TestEnvironment;
let standIn: QueueApiStandIn;
let redis: Redis;
let queues: Queues;

beforeAll(async () => {
  standIn = await startQueueApiStandIn();
  env = await createTestEnvironment("tc-history-sweep", { TASKCLUSTER_ROOT_URL: standIn.rootUrl });
  redis = createRedis(env.config.redis.url, "worker");
  queues = openQueues(redis, env.config.redis.prefix);
});

afterAll(async () => {
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  await standIn?.close();
  await env?.cleanup();
});

/** The completed set as the sweep reads it: job id → finishedOn (its score), ms. */
async function completedSet(): Promise<Map<string, number>> {
  const queue = queues["tc-ingest"];
  const flat = await (await queue.getBackend().client).zrevrange(queue.keys.completed!, 0, -1, { WITHSCORES: true });
  const finished = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) finished.set(flat[i]!, Number(flat[i + 1]));
  return finished;
}

async function addRun(): Promise<string> {
  const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
  standIn.addTask(task);
  const request = tcIngestJobRequest(tcJob(standIn.rootUrl, task));
  await addJob(queues, request);
  return request.opts.jobId;
}

describe("tc-ingest job history sweep", () => {
  it("finds nothing to read among outcomes the workers recorded, and exactly the outcome a vanished worker did not record", async () => {
    const lifecycle = new Lifecycle(log);
    await startPool(tcIngestPool, { config: env.config, log, lifecycle });
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await addRun());
    await waitFor(
      "30 runs ingested and recorded",
      async () => (await env.db.jobRecord.count({ where: { queue: "tc-ingest", state: "completed" } })) === ids.length,
      { timeoutMs: 60_000 },
    );
    await lifecycle.shutdown();

    const finished = await completedSet();
    expect([...finished.keys()].sort()).toEqual([...ids].sort());
    expect(await unrecordedOutcomes(env.db, "tc-ingest", "completed", finished)).toEqual([]);

    // A job completed by a worker that recorded nothing (as if killed right after BullMQ moved it).
    const unseen = await addRun();
    const connection = createRedis(env.config.redis.url, "worker");
    const bare = new Worker("tc-ingest", async () => "done", { connection, prefix: env.config.redis.prefix });
    bare.on("error", () => {});
    await waitFor("the unrecorded job to complete", async () => (await queues["tc-ingest"].getJobState(unseen)) === "completed");
    await bare.close();
    connection.disconnect();
    expect(await unrecordedOutcomes(env.db, "tc-ingest", "completed", await completedSet())).toEqual([unseen]);
    // Recorded as failed, not completed: still missing as a completion.
    expect(await unrecordedOutcomes(env.db, "tc-ingest", "failed", await completedSet())).toHaveLength(ids.length + 1);
  });
});
