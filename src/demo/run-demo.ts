/**
 * `pulse-bridge demo`: the whole flow on the local services, in one process.
 *
 * 1. local upstreams, the stand-ins the tests use too (src/stand-ins/): an
 *    hg.mozilla.org stand-in (`hg serve` with json-pushes), a git upstream
 *    over HTTP, and a Taskcluster Queue API stand-in;
 * 2. `start` in-process (migrate, dashboard, pools, bridge) on the demo's own
 *    database, BullMQ prefix, Pulse queues and exchanges (demo-config.ts);
 * 3. the repositories are tracked and pushed to, a compare-locales run is
 *    finished (demo-upstreams.ts), and the messages upstream would send
 *    (hgpushes changegroup.1, a GitHub push, task-completed on the elmo
 *    route) are published to the local broker (demo-messages.ts);
 * 4. once the queues are idle, a summary of what was stored.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import amqp from "amqplib";
import type { QueueName } from "../contract/contracts.ts";
import { hgSyncJobRequest } from "../contract/job-requests.ts";
import type { Queues } from "../contract/queues.ts";
import { addJob, closeQueues, openQueues } from "../contract/queues.ts";
import { type Config, loadConfig } from "../core/config.ts";
import { Lifecycle } from "../core/lifecycle.ts";
import { createLogger } from "../core/log.ts";
import { createRedis } from "../core/redis.ts";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";
import { type GitUpstream, startGitUpstream } from "../stand-ins/git-upstream.ts";
import { type HgServer, startHgServer } from "../stand-ins/hg-server.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../stand-ins/queue-api-server.ts";
import { startAllRoles } from "../start/all-roles.ts";
import { type Database, openDatabase } from "../storage/prisma.ts";
import { DEMO_NAME, demoEnvironment, portIsFree, resetDemoState } from "./demo-config.ts";
import { publishDemoMessages } from "./demo-messages.ts";
import { createDemoUpstreams } from "./demo-upstreams.ts";

export interface DemoOptions {
  env: Record<string, string | undefined>;
  /** Keep everything running (dashboard included) until SIGINT/SIGTERM. */
  serve: boolean;
  /** How long to wait for the queues to drain. */
  timeoutMs: number;
  print: (line: string) => void;
}

export interface DemoSummary {
  repositories: number;
  pushes: number;
  changesets: number;
  comparisons: number;
  jobs: Record<QueueName, { completed: number; failed: number; retrying: number; pending: number }>;
  dashboardUrl: string;
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const [hg, git, taskcluster] = await startStandIns();
  // The clones; the stand-ins keep their repositories in folders of their own.
  const workDir = await mkdtemp(path.join(tmpdir(), `${DEMO_NAME}-`));

  const env = demoEnvironment(options.env, { taskclusterRootUrl: taskcluster.rootUrl, clonesDir: path.join(workDir, "clones") });
  let config = loadConfig(env);
  // A dashboard already running on the usual port must not stop the tour.
  if (!(await portIsFree(config.dashboard.host, config.dashboard.port))) config = loadConfig({ ...env, DASHBOARD_PORT: "0" });
  const log = createLogger(options.env.LOG_LEVEL ? config.logLevel : "warn", "demo");
  const lifecycle = new Lifecycle(log);
  lifecycle.defer("upstreams", async () => {
    await Promise.allSettled([hg.close(), git.close(), taskcluster.close()]);
    await rm(workDir, { recursive: true, force: true });
  });
  if (options.serve) lifecycle.handleSignals();

  try {
    options.print(
      `demo: resetting its own state (database ${new URL(config.database.url).pathname.slice(1)}, BullMQ prefix ${config.redis.prefix}, Pulse queues ${config.pulse.queuePrefix}/*)`,
    );
    await resetDemoState(config);
    const roles = await startAllRoles({ config, log, lifecycle });
    const db = openDatabase(config.database, { atMost: 2 });
    lifecycle.defer("demo database", () => db.$disconnect());
    const redis = createRedis(config.redis, "worker");
    lifecycle.defer("demo redis", () => redis.quit().catch(() => redis.disconnect()));
    const queues = openQueues(redis, config.redis.prefix);
    lifecycle.defer("demo queues", () => closeQueues(queues));
    await waitForConsumers(config, options.timeoutMs);

    options.print(`demo: upstreams at ${hg.url} (hg), ${git.url} (git), ${taskcluster.rootUrl} (Taskcluster)`);
    const upstreams = await createDemoUpstreams(db, hg, git, taskcluster);
    await publishDemoMessages(config, upstreams);
    // A GitHub push names https://github.com/<owner>/<repo>, which a local
    // upstream cannot be; the demo's git repository is synced the way the
    // periodic reconcile pokes every tracked repository.
    await addJob(queues, hgSyncJobRequest({ kind: "reconcile", repoUrl: upstreams.gitPush.repoUrl }));
    options.print(
      `demo: published ${upstreams.hgPushes.length} hg pushes, 1 GitHub push and 1 task-completed message, and poked the git repository; waiting for the jobs`,
    );

    // One hg-sync job per push, the GitHub push and the git poke; one tc-ingest run.
    const expected: Partial<Record<QueueName, number>> = {};
    if (roles.pools.includes("hg-sync")) expected["hg-sync"] = upstreams.hgPushes.length + 2;
    if (roles.pools.includes("tc-ingest")) expected["tc-ingest"] = 1;
    await waitForIdle(queues, expected, options.timeoutMs);
    const summary = await summarize(db, queues, roles.dashboard.url);
    printSummary(summary, options.print, roles.pools);
    if (options.serve) {
      options.print(`demo: serving ${summary.dashboardUrl} until Ctrl-C`);
      await new Promise<void>((resolve) => lifecycle.signal.addEventListener("abort", () => resolve(), { once: true }));
    } else {
      options.print(
        `demo: the dashboard stopped with the demo; \`pulse-bridge demo --serve\` keeps it running, or browse the stored data with BULLMQ_PREFIX=${config.redis.prefix} and DATABASE_URL=<…>/${new URL(config.database.url).pathname.slice(1)} set for \`pulse-bridge dashboard\``,
      );
    }
    return summary;
  } finally {
    await lifecycle.shutdown("demo finished");
  }
}

/** All three stand-ins, or none: those that started are closed if another one fails. */
async function startStandIns(): Promise<[HgServer, GitUpstream, QueueApiStandIn]> {
  const starting = [startHgServer(), startGitUpstream(), startQueueApiStandIn()] as const;
  try {
    return await Promise.all(starting);
  } catch (error) {
    await Promise.allSettled(starting.map(async (standIn) => (await standIn).close()));
    throw error;
  }
}

/** The bridge binds its queues asynchronously: publish only once they exist and are consumed. */
async function waitForConsumers(config: Config, timeoutMs: number): Promise<void> {
  const { pulseFeeds } = await import("../core/config.ts");
  const connection = await amqp.connect(config.pulse.url, AMQP_SOCKET_OPTIONS);
  connection.on("error", () => {});
  const deadline = Date.now() + timeoutMs;
  try {
    for (const feed of pulseFeeds(config)) {
      for (;;) {
        const channel = await connection.createChannel();
        channel.on("error", () => {});
        const found = await channel.checkQueue(feed.queue).then(
          (q) => q.consumerCount > 0,
          () => false,
        );
        await channel.close().catch(() => {});
        if (found) break;
        if (Date.now() > deadline) throw new Error(`the bridge did not start consuming ${feed.queue}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Waits until every expected job exists and none is waiting or running.
 * Delayed jobs count as settled when they are scheduled (the periodic
 * reconcile) or retries after a failed attempt, which the summary reports.
 */
async function waitForIdle(queues: Queues, expected: Partial<Record<QueueName, number>>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let settled = true;
    for (const [name, count] of Object.entries(expected) as Array<[QueueName, number]>) {
      const counts = await queues[name].getJobCounts("waiting", "active", "prioritized", "completed", "failed");
      const delayed = await queues[name].getDelayed();
      // A job delayed without a failed attempt is deferred work (hg-sync waits
      // for a repository's lock that way): not settled.
      if (delayed.some((job) => job.attemptsMade === 0 && !job.id?.startsWith("repeat:"))) settled = false;
      const finished = (counts.completed ?? 0) + (counts.failed ?? 0) + delayed.length;
      if ((counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0) > 0 || finished < count) settled = false;
    }
    if (settled || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function summarize(db: Database, queues: Queues, dashboardUrl: string): Promise<DemoSummary> {
  const jobs = {} as DemoSummary["jobs"];
  for (const name of ["hg-sync", "tc-ingest", "dead-letter"] as const) {
    const counts = await queues[name].getJobCounts("completed", "failed", "waiting", "active", "prioritized");
    const retrying = (await queues[name].getDelayed()).filter((job) => job.attemptsMade > 0).length;
    jobs[name] = {
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      retrying,
      pending: (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0),
    };
  }
  return {
    repositories: await db.repository.count(),
    pushes: await db.push.count(),
    changesets: await db.changeset.count(),
    comparisons: await db.comparison.count(),
    jobs,
    dashboardUrl,
  };
}

function printSummary(summary: DemoSummary, print: (line: string) => void, pools: QueueName[]): void {
  print("");
  print("pulse-bridge demo summary");
  print(`  repositories: ${summary.repositories}`);
  print(`  pushes:       ${summary.pushes}`);
  print(`  changesets:   ${summary.changesets}`);
  print(`  comparisons:  ${summary.comparisons}`);
  for (const [queue, counts] of Object.entries(summary.jobs)) {
    const note = queue !== "dead-letter" && !pools.includes(queue as QueueName) ? " (no worker pool for this queue in this build)" : "";
    print(`  jobs ${queue.padEnd(11)} ${counts.completed} completed, ${counts.failed} failed, ${counts.retrying} retrying, ${counts.pending} pending${note}`);
  }
  print(`  dashboard:    ${summary.dashboardUrl}/queues (Bull Board), ${summary.dashboardUrl}/api/repositories, ${summary.dashboardUrl}/metrics`);
}
