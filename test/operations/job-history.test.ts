/**
 * JobRecord rows match what happened: a run with successes, retries and
 * permanent failures through the real pool runtime, then an outcome the
 * recording worker never saw (as if it had been killed) filled in by the
 * sweeper.
 */
import { Queue, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { PermanentError } from "../../src/core/permanent-error.ts";
import { createRedis } from "../../src/core/redis.ts";
import type { PoolDefinition } from "../../src/jobs/pool.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import { syntheticTcRun } from "../support/synthetic-jobs.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
beforeAll(async () => {
  env = await createTestEnvironment("job-history");
});
afterAll(async () => {
  await env.cleanup();
});

const payload = syntheticTcRun;

// ok-*: succeed; flaky-*: fail the first attempt; bad-*: transient failure on
// every attempt; perm-*: a permanent error (no retry).
const behaviour: PoolDefinition<"tc-ingest"> = {
  queue: "tc-ingest",
  defaultConcurrency: () => 4,
  create: async () => ({
    async process(job) {
      const kind = job.data.taskId.split("-")[0];
      if (kind === "flaky" && job.attemptsMade === 0) throw new Error("upstream answered 503");
      if (kind === "bad") throw new Error("upstream keeps answering 503");
      if (kind === "perm") throw new PermanentError("elmo.json is not JSON");
      return "done";
    },
  }),
};

describe("job history", () => {
  it("records every attempt's outcome of a run with failures and retries", async () => {
    const log = createLogger("silent", "test");
    const lifecycle = new Lifecycle(log);
    await startPool(behaviour, { config: env.config, log, lifecycle, historySweepIntervalMs: 200 });
    const redis = createRedis(env.config.redis.url, "producer");
    const queue = new Queue("tc-ingest", { connection: redis, prefix: env.config.redis.prefix });
    const ids = ["ok-1", "ok-2", "flaky-1", "flaky-2", "bad-1", "perm-1"];
    for (const id of ids) await queue.add("tc-run", payload(id), { jobId: id, attempts: 2 });

    const expected = [
      ["ok-1", "completed", 1],
      ["ok-2", "completed", 1],
      ["flaky-1", "retrying", 1],
      ["flaky-1", "completed", 2],
      ["flaky-2", "retrying", 1],
      ["flaky-2", "completed", 2],
      ["bad-1", "retrying", 1],
      ["bad-1", "failed", 2],
      ["perm-1", "failed", 1],
    ]
      .map(([jobId, state, attempts]) => `${jobId} ${state} ${attempts}`)
      .sort();
    const rows = await waitFor("all outcomes recorded", async () => {
      const found = await env.db.jobRecord.findMany({ where: { queue: "tc-ingest" } });
      return found.length >= expected.length ? found : undefined;
    });
    await lifecycle.shutdown();
    const final = await env.db.jobRecord.findMany({ where: { queue: "tc-ingest" } });
    expect(final.map((r) => `${r.jobId} ${r.state} ${r.attempts}`).sort()).toEqual(expected);
    const bad = rows.find((r) => r.jobId === "bad-1" && r.state === "failed")!;
    expect(bad.error).toContain("503");
    expect(bad.name).toBe("tc-run");
    expect(bad.enqueuedAt).toBeInstanceOf(Date);
    expect(bad.finishedAt!.getTime()).toBeGreaterThanOrEqual(bad.startedAt!.getTime());
    expect(final.find((r) => r.jobId === "perm-1")!.error).toContain("elmo.json is not JSON");

    // A job finished by a worker that never recorded it (as if killed right
    // after BullMQ moved the job): the next pool's sweeper records it.
    const unrecordedConnection = createRedis(env.config.redis.url, "worker");
    const unrecorded = new Worker("tc-ingest", async () => "done", { connection: unrecordedConnection, prefix: env.config.redis.prefix });
    unrecorded.on("error", () => {});
    await queue.add("tc-run", payload("ok-unseen"), { jobId: "ok-unseen" });
    await waitFor("the job completed", async () => (await queue.getJobState("ok-unseen")) === "completed");
    await unrecorded.close();
    unrecordedConnection.disconnect();
    expect(await env.db.jobRecord.count({ where: { jobId: "ok-unseen" } })).toBe(0);

    const again = new Lifecycle(log);
    await startPool(behaviour, { config: env.config, log, lifecycle: again });
    await waitFor(
      "the sweeper recorded the missed outcome",
      async () => (await env.db.jobRecord.count({ where: { jobId: "ok-unseen", state: "completed" } })) === 1,
    );
    await again.shutdown();
    await queue.close();
    redis.disconnect();
  });
});
