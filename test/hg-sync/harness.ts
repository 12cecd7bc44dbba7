/** Shared helpers of the hg-sync tests: an in-process worker pool and job waiting. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Job, Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import type { HgSyncJob } from "../../src/contract/contracts.ts";
import { hgSyncJobRequest } from "../../src/contract/job-requests.ts";
import type { Config } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { hgSyncPool } from "../../src/jobs/hg-sync/pool.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import { type GitUpstream, startGitUpstream } from "../../src/stand-ins/git-upstream.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

export async function startWorker(config: Config, concurrency = 2) {
  const log = createLogger(config.logLevel, "test-worker");
  const lifecycle = new Lifecycle(log);
  await startPool(hgSyncPool, { config, log, lifecycle, concurrency });
  return { stop: () => lifecycle.shutdown("test done") };
}

/** What useHgSyncSetting gives a test file: filled in by its beforeAll. */
export interface HgSyncSetting {
  env: TestEnvironment;
  /** Only when asked for with `hg: true`. */
  hg: HgServer;
  /** Only when asked for with `git: true`. */
  git: GitUpstream;
  jobs: ReturnType<typeof openQueue>;
}

/**
 * The usual setting of an hg-sync test file, set up in beforeAll and torn down
 * in afterAll: its own test environment, the upstream stand-ins it asks for,
 * an in-process worker pool and the hg-sync queue.
 */
export function useHgSyncSetting(name: string, upstreams: { hg?: boolean; git?: boolean }): HgSyncSetting {
  const setting = {} as HgSyncSetting;
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  beforeAll(async () => {
    setting.env = await createTestEnvironment(name);
    if (upstreams.hg) setting.hg = await startHgServer();
    if (upstreams.git) setting.git = await startGitUpstream();
    worker = await startWorker(setting.env.config);
    setting.jobs = openQueue(setting.env.config);
  });
  afterAll(async () => {
    await worker?.stop();
    await setting.jobs?.close();
    await setting.git?.close();
    await setting.hg?.close();
    await setting.env?.cleanup();
  });
  return setting;
}

export function openQueue(config: Config) {
  const connection = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  connection.on("error", () => {});
  const queue = new Queue<HgSyncJob>("hg-sync", { connection, prefix: config.redis.prefix });
  queue.on("error", () => {});
  return {
    queue,
    async add(data: HgSyncJob): Promise<string> {
      const request = hgSyncJobRequest(data);
      const job = await queue.add(request.name, request.data, request.opts);
      return job.id ?? request.opts.jobId;
    },
    /** Waits until the job has completed or failed for good; returns it. */
    async finished(jobId: string, timeoutMs = 30_000): Promise<Job<HgSyncJob>> {
      return waitFor(
        `job ${jobId} to finish`,
        async () => {
          const state = await queue.getJobState(jobId);
          // Read the job after its state: read before, it can predate the outcome
          // (state "completed" with no returnvalue yet).
          const job = state === "unknown" ? undefined : await queue.getJob(jobId);
          if (!job) return undefined;
          if (state === "completed") return job;
          // A failed attempt ends the wait too: tests expect none (or assert the reason).
          if ((state === "failed" || state === "delayed") && job.failedReason) return job;
          return undefined;
        },
        { timeoutMs },
      );
    },
    async close() {
      await queue.close();
      connection.disconnect();
    },
  };
}

export function message(routingKey: string) {
  return {
    connection: "pulse",
    feed: "hgpushes" as const,
    exchange: "exchange/hgpushes/v2",
    routingKey,
    body: "{}",
    bodyEncoding: "utf8" as const,
    headers: {},
    redelivered: false,
    receivedAt: new Date().toISOString(),
  };
}

/**
 * A real `pulse-bridge worker hg-sync` process: through tsx (no build
 * needed), or `node dist/cli.js` as users run it with `built` (needs `npm
 * run build`). Its stderr (JSON logs) is kept for diagnosis.
 */
export function spawnWorker(env: Record<string, string>, options: { concurrency?: number; extraEnv?: Record<string, string>; built?: boolean } = {}) {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const entry = options.built ? ["dist/cli.js"] : ["--import", "tsx", "src/cli.ts"];
  const child = spawn(process.execPath, [...entry, "worker", "hg-sync", "--concurrency", String(options.concurrency ?? 2)], {
    cwd: root,
    env: { ...process.env, ...env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "info", ...options.extraEnv },
    stdio: ["ignore", "ignore", "pipe"],
    // Own process group: kill() takes the worker's hg/git children with it,
    // as a crashed container or machine would.
    detached: true,
  });
  let logs = "";
  child.stderr!.on("data", (chunk) => {
    logs += chunk;
    if (logs.length > 2_000_000) logs = logs.slice(-1_000_000);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    logs: () => logs,
    started: () => waitFor("worker to start", () => logs.includes("worker pool started"), { timeoutMs: 30_000 }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill() {
      process.kill(-child.pid!, "SIGKILL");
      return exited;
    },
  };
}
