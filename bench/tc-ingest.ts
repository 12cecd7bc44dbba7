/**
 * `npm run bench:tc-ingest`: tc-ingest jobs/s against the Queue API stand-in
 * answering every request (Queue API and storage) after 20 ms, at the
 * default concurrency (TC_INGEST_CONCURRENCY), on the local Redis and
 * PostgreSQL (a fresh database, removed afterwards).
 *
 * Each job is a realistic run: elmo.json with four comparisons (de, fr ×
 * browser, toolkit), two repositories each, new placeholder revisions.
 * A job needs task + artifact listing (in parallel), getArtifact (303) and
 * the storage download: three round trips of latency, so the ceiling is
 * concurrency / 60 ms; the figure shows how close the worker gets.
 *
 * Options: JOBS (default 400), LATENCY_MS (20), CONCURRENCY (the default).
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { TcIngestJob } from "../src/contract/contracts.ts";
import { tcIngestJobRequest } from "../src/contract/job-requests.ts";
import { closeQueues, openQueues } from "../src/contract/queues.ts";
import { Lifecycle } from "../src/core/lifecycle.ts";
import { createLogger } from "../src/core/log.ts";
import { createRedis } from "../src/core/redis.ts";
import { startPool } from "../src/jobs/start-pool.ts";
import { tcIngestPool } from "../src/jobs/tc-ingest/pool.ts";
import { createTestEnvironment } from "../test/support/test-environment.ts";

const JOBS = Number(process.env.JOBS ?? 400);
const WARMUP = 20;
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 20);
const ROUND_TRIPS = 3;

const env = await createTestEnvironment("bench-tc-ingest");
// The stand-in runs in its own process, like the real Queue API.
const standIn = fork(fileURLToPath(new URL("./tc-ingest-stand-in.ts", import.meta.url)), {
  execArgv: ["--import", "tsx"],
  env: { ...process.env, STAND_IN_RUNS: String(WARMUP + JOBS), LATENCY_MS: String(LATENCY_MS) },
});
standIn.on("error", (error) => console.error(`stand-in: ${error.message}`));
const [{ rootUrl, jobs }] = (await once(standIn, "message")) as [{ rootUrl: string; jobs: TcIngestJob[] }];
const log = createLogger("silent", "bench");
const lifecycle = new Lifecycle(log);
const concurrency = Number(process.env.CONCURRENCY ?? env.config.tcIngest.concurrency);
const redis = createRedis(env.config.redis.url, "worker");
const queues = openQueues(redis, env.config.redis.prefix);

try {
  // Jobs may only name a configured deployment: the stand-in's.
  await startPool(tcIngestPool, { config: env.configWith({ TASKCLUSTER_ROOT_URL: rootUrl }), log, lifecycle, concurrency });
  const requests = jobs.map((job) => tcIngestJobRequest(job));
  const add = (batch: typeof requests) => queues["tc-ingest"].addBulk(batch.map((r) => ({ name: r.name, data: r.data, opts: r.opts })));
  const drained = async (expected: number) => {
    for (;;) {
      const counts = await queues["tc-ingest"].getJobCounts("completed", "failed");
      if ((counts.failed ?? 0) > 0) throw new Error(`${counts.failed} jobs failed: ${(await queues["tc-ingest"].getFailed(0, 0))[0]?.failedReason}`);
      if ((counts.completed ?? 0) >= expected) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  await add(requests.slice(0, WARMUP));
  await drained(WARMUP);

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await add(requests.slice(WARMUP));
  await drained(WARMUP + JOBS);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);

  const jobsPerSecond = JOBS / seconds;
  const ceiling = concurrency / ((ROUND_TRIPS * LATENCY_MS) / 1000);
  const comparisons = await env.db.comparison.count();
  console.log(
    `tc-ingest: ${JOBS} jobs in ${seconds.toFixed(2)} s = ${jobsPerSecond.toFixed(1)} jobs/s ` +
      `(concurrency ${concurrency}, stand-in latency ${LATENCY_MS} ms/request; latency-bound ceiling ${ceiling.toFixed(1)} jobs/s, reached ${((100 * jobsPerSecond) / ceiling).toFixed(0)}%; ` +
      `${comparisons} comparisons stored; worker CPU ${((cpu.user + cpu.system) / 1000 / JOBS).toFixed(1)} ms per job)`,
  );
  console.log(
    JSON.stringify({
      bench: "tc-ingest",
      jobs: JOBS,
      seconds: Number(seconds.toFixed(3)),
      jobsPerSecond: Number(jobsPerSecond.toFixed(1)),
      concurrency,
      latencyMs: LATENCY_MS,
      ceiling: Number(ceiling.toFixed(1)),
    }),
  );
} finally {
  await lifecycle.shutdown();
  await closeQueues(queues);
  redis.disconnect();
  standIn.send("close");
  standIn.disconnect();
  await env.cleanup();
}
