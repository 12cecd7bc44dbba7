/**
 * `pulse-bridge ingest task-group` and `ingest task` against the Queue API
 * stand-in: a group of 1,000 tasks listed in pages of 250, of which every
 * tenth carries TC_ROUTE; one job per completed or failed run of those, the
 * live flow's job ids (a task-completed message routed through routeMessage
 * first gives one job, not two), nothing on --dry-run, nothing more the
 * second time.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TcIngestJob } from "../../src/contract/contracts.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { pulseFeeds } from "../../src/core/config.ts";
import { routeMessage } from "../../src/routing/route-message.ts";
import { type QueueApiStandIn, type StandInTask, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { formatJson } from "../support/formats.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { compareLocalesTaskDefinition, slugid } from "../tc-ingest/fixtures.ts";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const ROUTE = "project.l10n.elmo.v1";
const RESOLVED = "2026-03-02T14:16:58.906Z";

let api: QueueApiStandIn;
let env: TestEnvironment;
let redis: Redis;
let queues: Queues;
let tcIngest: Queue<TcIngestJob>;

const groupId = slugid();
const groupTasks: StandInTask[] = [];
/** `<taskId>|<runId>` of every run the group backfill must enqueue. */
const expectedRuns: string[] = [];

function task(taskGroupId: string, routed: boolean, states: Array<"completed" | "failed" | "exception" | "running">): StandInTask {
  const definition = compareLocalesTaskDefinition({ taskGroupId });
  if (!routed) definition.routes = (definition.routes as string[]).filter((r) => r !== ROUTE);
  return {
    taskId: slugid(),
    definition,
    runs: states.map((state, runId) => ({ runId, state, ...(state === "running" ? {} : { resolved: RESOLVED }), artifacts: [] })),
  };
}

async function cli(...args: string[]) {
  return exec(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: root, env: { ...process.env, ...env.env }, maxBuffer: 64 * 1024 * 1024 });
}

async function cliFails(...args: string[]): Promise<string> {
  const failure = await cli(...args).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  expect(failure?.code).toBe(1);
  return failure!.stderr;
}

async function jobCount(): Promise<number> {
  const counts = await tcIngest.getJobCounts();
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** The live flow: a task-completed message for the task's run, through the bridge's routeMessage, added as the bridge does. */
async function liveMessage(standIn: StandInTask, runId: number): Promise<string> {
  const body = formatJson<{ body: any }>("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json").body;
  body.status.taskId = standIn.taskId;
  body.status.taskGroupId = (standIn.definition as { taskGroupId: string }).taskGroupId;
  body.status.runs = standIn.runs.slice(0, runId + 1).map((r) => ({ ...body.status.runs[0], runId: r.runId, state: r.state, resolved: r.resolved }));
  body.runId = runId;
  const feed = pulseFeeds(env.config).find((f) => f.kind === "taskcluster")!;
  const decision = routeMessage(
    {
      feed,
      exchange: env.config.pulse.exchanges.taskCompleted,
      routingKey: `primary.${standIn.taskId}.${runId}.us-central1.1.gecko-3.b-linux-gcp.gecko-level-3.${body.status.taskGroupId}._`,
      content: Buffer.from(JSON.stringify(body)),
      headers: { CC: [`route.${ROUTE}`] },
      redelivered: false,
    },
    env.config,
  );
  if (decision.action !== "enqueue") throw new Error(`the live message was not routed to a job: ${decision.action}`);
  await addJob(queues, decision.job);
  return decision.job.opts.jobId;
}

beforeAll(async () => {
  api = await startQueueApiStandIn({ taskGroupPageSize: 250 });
  env = await createTestEnvironment("backfill-tasks", { TASKCLUSTER_ROOT_URL: api.rootUrl });
  redis = new Redis(env.config.redis.url, { maxRetriesPerRequest: null });
  queues = openQueues(redis, env.config.redis.prefix);
  tcIngest = queues["tc-ingest"];
  for (let i = 0; i < 1000; i++) {
    const routed = i % 10 === 0;
    // Among the routed: a retried run (exception, then completed), a failed run, one still running.
    const states: Array<"completed" | "failed" | "exception" | "running"> =
      i === 990 ? ["running"] : i % 50 === 0 ? ["exception", "completed"] : i % 30 === 0 ? ["failed"] : ["completed"];
    const t = task(groupId, routed, states);
    groupTasks.push(t);
    api.addTask(t);
    if (routed) for (const run of t.runs) if (run.state === "completed" || run.state === "failed") expectedRuns.push(`${t.taskId}|${run.runId}`);
  }
}, 60_000);

afterAll(async () => {
  await closeQueues(queues).catch(() => {});
  redis?.disconnect();
  await env?.cleanup();
  await api?.close();
});

describe("ingest task-group", () => {
  it("--dry-run lists every page, says what it would enqueue and enqueues nothing", async () => {
    const { stdout, stderr } = await cli("ingest", "task-group", groupId, "--dry-run", "--json");
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ dryRun: true, tasksListed: 1000, tasksRouted: 100, added: 0, existing: 0, wouldAdd: expectedRuns.length });
    expect(summary.runs.map((r: { taskId: string; runId: number }) => `${r.taskId}|${r.runId}`).sort()).toEqual([...expectedRuns].sort());
    // 1,000 tasks in pages of 250: four listTaskGroup requests, progress after each.
    expect(api.count(new RegExp(`/task-group/${groupId}/list`))).toBe(4);
    expect(stderr).toContain(`task group ${groupId}: page 4, 1000 task(s) listed, 100 with route ${ROUTE}`);
    expect(summary.skipped.some((s: { reason: string }) => /exception/.test(s.reason))).toBe(true);
    expect(summary.skipped.some((s: { reason: string }) => /running, not resolved yet/.test(s.reason))).toBe(true);
    expect(await jobCount()).toBe(0);
  });

  it("overlapping a live task-completed message gives one job per run; a second backfill adds nothing", async () => {
    const live = groupTasks[10]!;
    const liveJobId = await liveMessage(live, 0);
    expect(await jobCount()).toBe(1);

    const { stdout } = await cli("ingest", "task-group", groupId, "--json");
    const first = JSON.parse(stdout);
    expect(first).toMatchObject({ dryRun: false, added: expectedRuns.length - 1, existing: 1 });
    expect(first.runs.find((r: { jobId: string }) => r.jobId === liveJobId)).toMatchObject({ outcome: "exists", taskId: live.taskId, runId: 0 });
    expect(await jobCount()).toBe(expectedRuns.length);

    // The live job kept its own message; the backfilled ones carry a rebuilt one, with the same payload as a live one.
    const liveJob = (await tcIngest.getJob(liveJobId))!;
    expect(liveJob.data.message.headers).not.toHaveProperty("x-pulse-bridge-backfill");
    const other = groupTasks[20]!;
    const backfilled = (await tcIngest.getJob(`tc|${new URL(api.rootUrl).host.replace(":", "_")}|${other.taskId}|0`))!;
    expect(backfilled.data).toMatchObject({
      kind: "tc-run",
      rootUrl: api.rootUrl,
      taskId: other.taskId,
      runId: 0,
      state: "completed",
      taskGroupId: groupId,
      resolved: RESOLVED,
    });
    expect(backfilled.data.message).toMatchObject({ exchange: env.config.pulse.exchanges.taskCompleted, feed: "taskcluster", connection: "pulse" });
    expect(backfilled.data.message.headers).toMatchObject({ "x-pulse-bridge-backfill": `ingest task-group ${groupId}` });

    const { stdout: again } = await cli("ingest", "task-group", groupId, "--json");
    expect(JSON.parse(again)).toMatchObject({ added: 0, existing: expectedRuns.length });
    expect(await jobCount()).toBe(expectedRuns.length);
  }, 60_000);
});

describe("ingest task-group against a failing Queue API", () => {
  it("retries a transient failure of a page, stops at a permanent one saying what was done, and a re-run adds only the rest", async () => {
    const group = slugid();
    // 600 tasks: pages of 250, 250 and 100; tasks 0, 100, ... 500 carry the route (three on the first page).
    for (let i = 0; i < 600; i++) api.addTask(task(group, i % 100 === 0, ["completed"]));
    const before = await jobCount();
    const nextPages = new RegExp(`/task-group/${group}/list\\?.*continuationToken`);
    // One 502 on the second page: tried again, the listing completes.
    api.failNext({ path: nextPages, status: 502 });
    const { stdout } = await cli("ingest", "task-group", group, "--dry-run", "--json");
    expect(JSON.parse(stdout)).toMatchObject({ tasksListed: 600, tasksRouted: 6, wouldAdd: 6 });

    // A 403 on the second page: the first page's jobs stay, and the command says so.
    api.failNext({ path: nextPages, status: 403 });
    const stderr = await cliFails("ingest", "task-group", group);
    expect(stderr).toContain("HTTP 403 from");
    expect(stderr).toContain("(after 1 page(s), 250 task(s) listed and 3 job(s) enqueued: run the command again, nothing is added twice)");
    expect(await jobCount()).toBe(before + 3);
    const { stdout: rest } = await cli("ingest", "task-group", group, "--json");
    expect(JSON.parse(rest)).toMatchObject({ added: 3, existing: 3 });
    expect(await jobCount()).toBe(before + 6);
  }, 60_000);

  it("a group the Queue API lists no task of says so", async () => {
    const { stdout } = await cli("ingest", "task-group", slugid());
    expect(stdout).toContain("0 task(s) listed");
    expect(stdout).toContain("the Queue API lists no task in this group: check its id and --source");
  });
});

describe("ingest task", () => {
  it("--run takes one run; without it every completed or failed run; already queued runs are not added again", async () => {
    const t = task(slugid(), true, ["failed", "exception", "completed"]);
    api.addTask(t);
    const before = await jobCount();
    const host = new URL(api.rootUrl).host.replace(":", "_");

    const { stdout: dry } = await cli("ingest", "task", t.taskId, "--run", "2", "--dry-run");
    expect(dry).toContain(`task ${t.taskId} run 2 (completed): would enqueue job tc|${host}|${t.taskId}|2`);
    expect(await jobCount()).toBe(before);

    const { stdout } = await cli("ingest", "task", t.taskId, "--run", "2", "--json");
    const one = JSON.parse(stdout);
    expect(one.runs).toEqual([{ taskId: t.taskId, runId: 2, runState: "completed", jobId: `tc|${host}|${t.taskId}|2`, outcome: "added" }]);
    expect(await jobCount()).toBe(before + 1);

    const { stdout: all } = await cli("ingest", "task", t.taskId);
    expect(all).toContain(`task ${t.taskId} run 0 (failed): enqueued job tc|${host}|${t.taskId}|0`);
    expect(all).toContain(`task ${t.taskId} run 2 (completed): job tc|${host}|${t.taskId}|2 is already there (waiting)`);
    expect(all).toContain(`task ${t.taskId} run 1: skipped, ended in exception`);
    expect(all).toContain("2 run(s) to ingest, 1 enqueued, 1 already there");
    expect(await jobCount()).toBe(before + 2);
    const failed = (await tcIngest.getJob(`tc|${host}|${t.taskId}|0`))!;
    expect(failed.data).toMatchObject({ state: "failed", message: { exchange: env.config.pulse.exchanges.taskFailed } });
  }, 60_000);

  it("refuses, with the reason, a run that is not there or not resolved, a task without the route, an unknown source", async () => {
    const t = task(slugid(), true, ["exception"]);
    const unrouted = task(slugid(), false, ["completed"]);
    api.addTask(t);
    api.addTask(unrouted);
    expect(await cliFails("ingest", "task", t.taskId, "--run", "5")).toContain(`task ${t.taskId} run 5 has no such run: nothing enqueued`);
    expect(await cliFails("ingest", "task", t.taskId)).toContain("ended in exception");
    expect(await cliFails("ingest", "task", unrouted.taskId)).toContain(`does not carry the route ${ROUTE}: nothing enqueued`);
    expect(await cliFails("ingest", "task", slugid())).toContain("not found at");
    expect(await cliFails("ingest", "task", t.taskId, "--source", "community")).toContain('no Taskcluster source named "community"');
    expect(await cliFails("ingest", "task", t.taskId, "--run", "x")).toContain("must be a run id");
  }, 60_000);
});
