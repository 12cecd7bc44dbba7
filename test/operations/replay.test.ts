/**
 * Replay: failed jobs re-run in bulk exactly once however often replay runs;
 * dead letters become jobs once a fix makes them valid, and the still-invalid
 * ones stay. Also runs the real `pulse-bridge replay` command once.
 */
import { spawnSync } from "node:child_process";
import { type Queue, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OriginalMessage } from "../../src/contract/contracts.ts";
import { deadLetterJobRequest } from "../../src/contract/job-requests.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { replayDeadLetters } from "../../src/replay/dead-letters.ts";
import { replayFinishedJobs } from "../../src/replay/failed-jobs.ts";
import { formatJson } from "../support/formats.ts";
import { syntheticTcRun } from "../support/synthetic-jobs.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
let redis: Redis;
let queues: Queues;

beforeAll(async () => {
  env = await createTestEnvironment("replay");
  redis = createRedis(env.config.redis.url, "worker");
  queues = openQueues(redis, env.config.redis.prefix);
});
afterAll(async () => {
  await closeQueues(queues);
  redis.disconnect();
  await env.cleanup();
});

const tcPayload = syntheticTcRun;

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { env: { ...process.env, ...env.env }, encoding: "utf8", timeout: 60_000 });
}

describe("replay of failed jobs", () => {
  it("re-runs 20 failed jobs once; replaying again adds nothing", async () => {
    let broken = true;
    const runs = new Map<string, number>();
    const connection = createRedis(env.config.redis.url, "worker");
    const worker = new Worker(
      "tc-ingest",
      async (job) => {
        runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
        if (broken) throw new Error("Queue API answered 503");
      },
      { connection, prefix: env.config.redis.prefix, concurrency: 10 },
    );
    worker.on("error", () => {});
    const queue = queues["tc-ingest"] as unknown as Queue;
    for (let i = 0; i < 20; i++) await queue.add("tc-run", tcPayload(`task-${i}`), { jobId: `tc|task-${i}`, attempts: 1 });
    await waitFor("20 failed jobs", async () => (await queue.getFailedCount()) === 20);

    const dry = cli("replay", "--queue", "tc-ingest", "--state", "failed", "--since", "2020-01-01", "--dry-run");
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("tc-ingest: 20 failed job(s) matched, 0 replayed [dry run]");
    expect(await queue.getFailedCount()).toBe(20);

    const none = await replayFinishedJobs(queues, { queue: "tc-ingest", state: "failed", until: new Date("2020-01-01") });
    expect(none.matched).toBe(0);

    broken = false;
    const first = await replayFinishedJobs(queues, { queue: "tc-ingest", state: "failed", since: new Date(Date.now() - 3_600_000) });
    expect(first).toMatchObject({ matched: 20, replayed: 20, skipped: [] });
    await waitFor("all 20 completed", async () => (await queue.getCompletedCount()) === 20);

    const second = await replayFinishedJobs(queues, { queue: "tc-ingest", state: "failed" });
    expect(second).toMatchObject({ matched: 0, replayed: 0 });
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed", "completed");
    expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 20 });
    expect([...runs.values()].every((n) => n === 2)).toBe(true);
    await worker.close();
    connection.disconnect();
  });
});

describe("replay of dead letters", () => {
  it("turns letters that a fix made valid into jobs, keeps the invalid ones, and is idempotent", async () => {
    const delivery = formatJson("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json");
    const letter = (exchange: string, body: string): OriginalMessage => ({
      connection: "pulse",
      feed: "taskcluster",
      exchange,
      routingKey: delivery.fields.routingKey,
      body,
      bodyEncoding: "utf8",
      headers: delivery.properties.headers,
      redelivered: false,
      receivedAt: new Date().toISOString(),
    });
    const goodBody = JSON.stringify(delivery.body);
    // Valid today (dead-lettered by an older, buggier bridge).
    const validToday = letter(env.config.pulse.exchanges.taskCompleted, goodBody);
    // Published on exchanges the configuration did not know yet: the "fix" is
    // a configuration change (PULSE_EXCHANGE_PREFIX).
    const otherExchange = letter(
      "staging/exchange/taskcluster-queue/v1/task-completed",
      JSON.stringify({ ...delivery.body, status: { ...delivery.body.status, taskId: "gUAqRKDUTcuyE96IFj1oXw" } }),
    );
    const broken = letter(env.config.pulse.exchanges.taskCompleted, "{not json");
    const ids: string[] = [];
    for (const [message, reason] of [
      [validToday, "old bug"],
      [otherExchange, "exchange not bound"],
      [broken, "body is not JSON"],
    ] as const) {
      const request = deadLetterJobRequest({ kind: "dead-letter", reason, message });
      await addJob(queues, request);
      ids.push(request.opts.jobId);
    }

    const dry = await replayDeadLetters(env.config, queues, { dryRun: true });
    expect(dry).toMatchObject({ examined: 3, enqueued: 1, stillInvalid: 2 });
    expect(await queues["dead-letter"].count()).toBe(3);

    const first = await replayDeadLetters(env.config, queues);
    expect(first).toMatchObject({ examined: 3, enqueued: 1, ignored: 0, stillInvalid: 2 });
    const tcQueue = queues["tc-ingest"];
    const jobId = first.outcomes.find((o) => o.outcome === "enqueued")!.detail.split(" ")[1]!;
    expect((await tcQueue.getJob(jobId))?.data.taskId).toBe("fUAqRKDUTcuyE96IFj1oXw");
    expect(await queues["dead-letter"].getJob(ids[0]!)).toBeUndefined();

    const fixed = env.configWith({ PULSE_EXCHANGE_PREFIX: "staging/" });
    const single = await replayDeadLetters(fixed, queues, { id: ids[1]! });
    expect(single, JSON.stringify(single.outcomes)).toMatchObject({ examined: 1, enqueued: 1 });
    const again = await replayDeadLetters(fixed, queues);
    expect(again).toMatchObject({ examined: 1, enqueued: 0, stillInvalid: 1 });
    expect(again.outcomes[0]!.detail).toContain("not JSON");

    const cliRun = cli("replay", "--dead-letter");
    expect(cliRun.status, cliRun.stderr).toBe(0);
    expect(cliRun.stdout).toContain("dead letters: 1 examined, 0 enqueued, 0 ignored (removed), 1 still invalid (kept)");

    // Same ids, so re-submitting the same letters could never duplicate jobs.
    const tcJobs = await tcQueue.getJobs(["waiting", "active", "delayed", "completed", "failed"]);
    expect(tcJobs.filter((job) => job.data.taskId === "fUAqRKDUTcuyE96IFj1oXw")).toHaveLength(1);
    expect(tcJobs.filter((job) => job.data.taskId === "gUAqRKDUTcuyE96IFj1oXw")).toHaveLength(1);
  });
});
