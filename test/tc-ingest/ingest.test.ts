/**
 * The tc-ingest pool, run in-process through startPool against the real
 * Redis and PostgreSQL; only Taskcluster is a stand-in (two deployments).
 */
import type { Job } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TcIngestJob } from "../../src/contract/contracts.ts";
import { tcIngestJobRequest } from "../../src/contract/job-requests.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import type { Config } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import type { IngestResult } from "../../src/jobs/tc-ingest/ingest-run.ts";
import { tcIngestPool } from "../../src/jobs/tc-ingest/pool.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { compareLocalesArtifacts, GECKO_STRINGS, hex40, realisticElmoJson, realSummary, slugid, standInTask, tcJob } from "./fixtures.ts";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test");
let env: TestEnvironment;
let firefoxCi: QueueApiStandIn;
let communityTc: QueueApiStandIn;
let lifecycle: Lifecycle;
let redis: Redis;
let queues: Queues;
let config: Config;

beforeAll(async () => {
  env = await createTestEnvironment("tc-ingest");
  // Small pages, so every listing follows continuationToken.
  firefoxCi = await startQueueApiStandIn({ pageSize: 2 });
  communityTc = await startQueueApiStandIn();
  lifecycle = new Lifecycle(log);
  // Jobs may only name configured deployments: the two stand-ins.
  config = env.configWith({
    TASKCLUSTER_ROOT_URL: firefoxCi.rootUrl,
    TC_EXTRA_SOURCES: JSON.stringify([{ name: "community", pulseUrl: "amqp://guest:guest@127.0.0.1:5672/communitytc", rootUrl: `${communityTc.rootUrl}/` }]),
  });
  await startPool(tcIngestPool, { config, log, lifecycle });
  redis = createRedis(env.config.redis.url, "worker");
  queues = openQueues(redis, env.config.redis.prefix);
});

afterAll(async () => {
  await lifecycle?.shutdown();
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  await firefoxCi?.close();
  await communityTc?.close();
  await env?.cleanup();
});

/** Adds the job as the bridge would (optionally with other options) and waits until BullMQ is done with it. */
async function run(data: TcIngestJob, opts: { jobId?: string; fastRetries?: boolean } = {}): Promise<Job> {
  const request = tcIngestJobRequest(data);
  const jobId = opts.jobId ?? request.opts.jobId;
  await addJob(queues, { ...request, opts: { ...request.opts, jobId, ...(opts.fastRetries ? { backoff: { type: "fixed", delay: 20 } } : {}) } });
  return finished(jobId);
}

function finished(jobId: string): Promise<Job> {
  return waitFor(`job ${jobId} to finish`, async () => {
    const job = await queues["tc-ingest"].getJob(jobId);
    return job?.finishedOn ? job : undefined;
  });
}

async function comparisonsOf(buildId: number) {
  return env.db.comparison.findMany({
    where: { buildId },
    include: { locale: true, revisions: { include: { changeset: true }, orderBy: { repository: "asc" } } },
    orderBy: [{ config: "asc" }, { localeId: "asc" }],
  });
}

describe("tc-ingest", () => {
  it("stores a realistic elmo.json: exact Build and Comparison rows, completion computed, revisions linked to placeholders", async () => {
    const revisions = { geckoStrings: hex40(), de: hex40(), fr: hex40() };
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson(revisions)) });
    firefoxCi.addTask(task);

    const job = await run(tcJob(firefoxCi.rootUrl, task));
    expect(job.failedReason).toBeUndefined();
    const result = job.returnvalue as IngestResult;
    expect(result).toMatchObject({ state: "completed", elmoJson: "public/compare-locales/elmo.json", comparisons: 4, placeholdersCreated: 3 });
    // elmo.json, four detail artifacts and a log, in pages of two.
    expect(firefoxCi.count(new RegExp(`/task/${task.taskId}/runs/0/artifacts(\\?|$)`))).toBe(3);

    const build = await env.db.build.findUniqueOrThrow({ where: { id: result.buildId } });
    expect(build).toMatchObject({
      rootUrl: firefoxCi.rootUrl,
      taskId: task.taskId,
      runId: 0,
      state: "completed",
      taskGroupId: (task.definition as { taskGroupId: string }).taskGroupId,
      resolvedAt: new Date("2026-03-02T14:16:58.906Z"),
      source: "https://hg.mozilla.org/l10n-central/de/file/2f77bc4f354d9ba67ea5270b2fc789f4b0521287/.taskcluster.yml",
      repository: GECKO_STRINGS,
      compareLocalesVersion: "9.0.4",
      hasElmoJson: true,
    });

    const comparisons = await comparisonsOf(build.id);
    expect(comparisons.map((c) => [c.config, c.locale.code])).toEqual([
      ["_configs/browser.toml", "de"],
      ["_configs/browser.toml", "fr"],
      ["_configs/toolkit.toml", "de"],
      ["_configs/toolkit.toml", "fr"],
    ]);
    const de = comparisons[0]!;
    const s = realSummary("de", 0);
    expect(de).toMatchObject({
      errors: s.errors,
      warnings: s.warnings,
      missing: s.missing,
      missingW: s.missing_w,
      report: s.report,
      obsolete: s.obsolete,
      changed: s.changed,
      changedW: s.changed_w,
      unchanged: s.unchanged,
      unchangedW: s.unchanged_w,
      keys: s.keys,
      artifactName: "public/compare-locales/compares/browser.de.json",
      artifactUrl: `${firefoxCi.rootUrl}/api/queue/v1/task/${task.taskId}/runs/0/artifacts/public%2Fcompare-locales%2Fcompares%2Fbrowser.de.json`,
      resolvedUrl: null,
    });
    expect(de.artifactExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    // changed·100 / (changed + unchanged + missing): 13·100/14, 3·100/14, 2·100/2, 0/2
    expect(comparisons.map((c) => c.completion)).toEqual([1300 / 14, 300 / 14, 100, 0]);
    expect(comparisons[1]).toMatchObject({ changed: 3, unchanged: 2, missing: 9, missingW: 21, report: 1 });

    for (const comparison of comparisons) {
      expect(comparison.revisions.map((r) => [r.repository, r.changeset.revision, r.changeset.placeholder])).toEqual([
        [`https://hg.mozilla.org/l10n-central/${comparison.locale.code}`, revisions[comparison.locale.code as "de" | "fr"], true],
        [GECKO_STRINGS, revisions.geckoStrings, true],
      ]);
    }
    expect(await env.db.changeset.count({ where: { revision: { in: Object.values(revisions) } } })).toBe(3);
  });

  it("makes no duplicates on redelivery or replay, and a re-ingest updates the same rows", async () => {
    const revisions = { geckoStrings: hex40(), de: hex40(), fr: hex40() };
    const elmo = realisticElmoJson(revisions);
    const task = standInTask({ artifacts: compareLocalesArtifacts(elmo) });
    firefoxCi.addTask(task);
    const data = tcJob(firefoxCi.rootUrl, task);

    const first = await run(data);
    const buildId = (first.returnvalue as IngestResult).buildId;
    const before = await comparisonsOf(buildId);
    await env.db.comparison.update({
      where: { id: before[0]!.id },
      data: { resolvedUrl: "https://storage.example/x", resolvedExpiresAt: new Date(Date.now() + 3_600_000) },
    });

    // Redelivery: the bridge adds the same job id again; BullMQ keeps the one it has.
    const again = await run(data);
    expect(again.timestamp).toBe(first.timestamp);

    // Replay (a new job for the same run) after the artifact changed: updated in place.
    elmo.comparisons[0]!.summary.changed = 14;
    elmo.comparisons.pop();
    firefoxCi.addTask(
      standInTask({ taskId: task.taskId, taskGroupId: (task.definition as { taskGroupId: string }).taskGroupId, artifacts: compareLocalesArtifacts(elmo) }),
    );
    const replay = await run(data, { jobId: `${tcIngestJobRequest(data).opts.jobId}|replay` });
    expect(replay.failedReason).toBeUndefined();
    expect((replay.returnvalue as IngestResult).buildId).toBe(buildId);

    expect(await env.db.build.count({ where: { taskId: task.taskId } })).toBe(1);
    const after = await comparisonsOf(buildId);
    expect(after.map((c) => c.id)).toEqual(before.slice(0, 3).map((c) => c.id));
    expect(after[0]).toMatchObject({ changed: 14, completion: 1400 / 15, resolvedUrl: "https://storage.example/x" });
    expect(await env.db.comparisonRevision.count({ where: { comparisonId: { in: before.map((c) => c.id) } } })).toBe(6);
  });

  it("creates each placeholder once when 50 concurrent jobs name overlapping unknown revisions", async () => {
    // A second pool on the same queue, so that many transactions really overlap.
    const racing = new Lifecycle(log);
    await startPool(tcIngestPool, { config, log, lifecycle: racing, concurrency: 50 });
    try {
      const geckoStrings = hex40();
      const shared = Array.from({ length: 8 }, () => hex40());
      const locales = ["de", "fr", "it", "ja-JP-mac", "pt-BR"];
      const tasks = Array.from({ length: 50 }, (_, i) => {
        const elmo = {
          version: "1.0",
          "compare-locales": "9.0.4",
          repository: GECKO_STRINGS,
          comparisons: [0, 1, 2].map((k) => {
            const locale = locales[(i + k) % locales.length]!;
            return {
              locale,
              config: "_configs/browser.toml",
              artifact: `compares/browser.${locale}.json`,
              revisions: { "/l10n/gecko-strings/": geckoStrings, [`/l10n-central/${locale}/`]: shared[(i + k) % shared.length]! },
              summary: realSummary("fr"),
            };
          }),
        };
        const task = standInTask({ artifacts: compareLocalesArtifacts(elmo, { details: false }) });
        firefoxCi.addTask(task);
        return task;
      });
      const requests = tasks.map((task) => tcIngestJobRequest(tcJob(firefoxCi.rootUrl, task)));
      await queues["tc-ingest"].addBulk(requests.map((r) => ({ name: r.name, data: r.data, opts: r.opts })));
      const jobs = await Promise.all(requests.map((r) => finished(r.opts.jobId)));

      expect(jobs.map((job) => job.failedReason ?? "ok")).toEqual(jobs.map(() => "ok"));
      expect(jobs.map((job) => job.attemptsMade)).toEqual(jobs.map(() => 1));
      const revisions = [geckoStrings, ...shared];
      const rows = await env.db.changeset.findMany({ where: { revision: { in: revisions } } });
      expect(rows).toHaveLength(revisions.length);
      expect(rows.every((row) => row.placeholder)).toBe(true);
      // Exactly one job created each placeholder; the others found it.
      expect(jobs.reduce((sum, job) => sum + (job.returnvalue as IngestResult).placeholdersCreated, 0)).toBe(revisions.length);
      expect(await env.db.comparisonRevision.count({ where: { changeset: { revision: { in: revisions } } } })).toBe(50 * 3 * 2);
    } finally {
      await racing.shutdown();
    }
  });

  it("links revisions hg-sync already stored without turning them into placeholders", async () => {
    const known = hex40();
    const existing = await env.db.changeset.create({
      data: { revision: known, author: "Localizer <l10n@example.com>", description: "Update de", placeholder: false },
    });
    const revisions = { geckoStrings: known, de: hex40(), fr: hex40() };
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson(revisions)) });
    firefoxCi.addTask(task);

    const job = await run(tcJob(firefoxCi.rootUrl, task));
    expect(job.returnvalue).toMatchObject({ comparisons: 4, placeholdersCreated: 2 });
    expect(await env.db.changeset.findUniqueOrThrow({ where: { revision: known } })).toEqual(existing);
    expect(await env.db.comparisonRevision.count({ where: { changesetId: existing.id } })).toBe(4);
  });

  it("fails at once when a revisions path cannot be resolved to a repository", async () => {
    const elmo = realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() });
    delete elmo.repository;
    const task = standInTask({ artifacts: compareLocalesArtifacts(elmo), source: "urn:not-a-repository" });
    firefoxCi.addTask(task);

    const job = await run(tcJob(firefoxCi.rootUrl, task), { fastRetries: true });
    expect(job.failedReason).toBe(
      `public/compare-locales/elmo.json of task ${task.taskId} run 0: elmo.json is invalid: comparisons[0].revisions["/l10n/gecko-strings/"]: cannot be resolved to a repository URL (elmo.json names no repository and the task's metadata.source gives none)`,
    );
    expect(job.attemptsMade).toBe(1);
  });

  it("retries a Queue API 500 and stores the run", async () => {
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    firefoxCi.addTask(task);
    firefoxCi.failNext({ path: new RegExp(`/task/${task.taskId}$`), status: 500 });

    const job = await run(tcJob(firefoxCi.rootUrl, task));
    expect(job.failedReason).toBeUndefined();
    expect(job.returnvalue).toMatchObject({ comparisons: 4 });
    expect(firefoxCi.count(new RegExp(`/task/${task.taskId}$`))).toBe(2);
  });

  it("retries the job with backoff on 429 and on a broken artifact download", async () => {
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    firefoxCi.addTask(task);
    // The client does not retry 429 itself: that is the job's backoff.
    firefoxCi.failNext({ path: new RegExp(`/task/${task.taskId}$`), status: 429 });
    firefoxCi.failNext({ server: "storage", path: new RegExp(`/${task.taskId}/0/public/compare-locales/elmo.json$`), status: "reset" });

    const job = await run(tcJob(firefoxCi.rootUrl, task), { fastRetries: true });
    expect(job.returnvalue).toMatchObject({ comparisons: 4 });
    expect(job.attemptsMade).toBe(3);
    expect(job.stacktrace ?? []).toHaveLength(2);
    expect((job.stacktrace ?? []).join("\n")).toMatch(/HTTP 429/);
  });

  it("fails a job for an unknown task at once, with the reason", async () => {
    const missing = slugid();
    const task = standInTask({ taskId: missing, artifacts: [] });
    const job = await run(tcJob(firefoxCi.rootUrl, task), { fastRetries: true });
    expect(await job.getState()).toBe("failed");
    expect(job.failedReason).toMatch(new RegExp(`task ${missing}: HTTP 404 ResourceNotFound from ${firefoxCi.rootUrl}$`));
    expect(job.attemptsMade).toBe(1);
    expect(await env.db.build.count({ where: { taskId: missing } })).toBe(0);
  });

  it("fails a malformed elmo.json at once, naming the validation path", async () => {
    const elmo = realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() });
    elmo.comparisons[1]!.summary.missing = -3;
    const task = standInTask({ artifacts: compareLocalesArtifacts(elmo) });
    firefoxCi.addTask(task);

    const job = await run(tcJob(firefoxCi.rootUrl, task), { fastRetries: true });
    expect(await job.getState()).toBe("failed");
    expect(job.failedReason).toContain(
      `public/compare-locales/elmo.json of task ${task.taskId} run 0: elmo.json is invalid: comparisons[1].summary.missing: Too small`,
    );
    expect(job.attemptsMade).toBe(1);
    expect(await env.db.build.count({ where: { taskId: task.taskId } })).toBe(0);
  });

  it("stores a failed run that published elmo.json, with state failed", async () => {
    const revisions = { geckoStrings: hex40(), de: hex40(), fr: hex40() };
    const task = standInTask({ state: "failed", runId: 1, artifacts: compareLocalesArtifacts(realisticElmoJson(revisions)) });
    firefoxCi.addTask(task);

    const job = await run(tcJob(firefoxCi.rootUrl, task));
    expect(job.returnvalue).toMatchObject({ state: "failed", comparisons: 4 });
    const build = await env.db.build.findFirstOrThrow({ where: { taskId: task.taskId }, include: { comparisons: true } });
    expect(build).toMatchObject({ runId: 1, state: "failed", hasElmoJson: true });
    expect(build.comparisons.map((c) => c.errors).sort()).toEqual([0, 0, 0, 1]);
  });

  it("records a run without elmo.json (or with only an error artifact) as a Build without comparisons", async () => {
    const plain = standInTask({ artifacts: [{ name: "public/logs/live_backing.log", content: "no compare-locales here" }] });
    const broken = standInTask({ state: "failed", artifacts: [{ name: "public/compare-locales/elmo.json", storageType: "error" }] });
    firefoxCi.addTask(plain);
    firefoxCi.addTask(broken);

    for (const task of [plain, broken]) {
      const job = await run(tcJob(firefoxCi.rootUrl, task));
      expect(await job.getState()).toBe("completed");
      expect(job.returnvalue).toMatchObject({ elmoJson: null, comparisons: 0 });
      const build = await env.db.build.findFirstOrThrow({ where: { taskId: task.taskId }, include: { comparisons: true } });
      expect(build).toMatchObject({ hasElmoJson: false, repository: null, comparisons: [] });
    }
  });

  it("keeps runs of two deployments apart, each resolved against its own root URL and source", async () => {
    const taskId = slugid();
    const geckoStrings = hex40();
    // Community-TC: no repository in elmo.json, so revisions resolve against the task's metadata.source.
    const elmo = realisticElmoJson({ geckoStrings, de: hex40(), fr: hex40() });
    delete elmo.repository;
    firefoxCi.addTask(standInTask({ taskId, artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings, de: hex40(), fr: hex40() })) }));
    const community = standInTask({
      taskId,
      artifacts: compareLocalesArtifacts(elmo, { prefix: "public/" }),
      source: "https://github.com/mozilla-l10n/firefox-l10n/blob/main/.taskcluster.yml",
    });
    communityTc.addTask(community);

    const jobs = await Promise.all([
      run(tcJob(firefoxCi.rootUrl, community)),
      run(tcJob(`${communityTc.rootUrl}/`, community, { withMessage: false, carries: "null" })),
    ]);
    expect(jobs.map((job) => job.failedReason)).toEqual([undefined, undefined]);

    const builds = await env.db.build.findMany({ where: { taskId }, orderBy: { rootUrl: "asc" }, include: { comparisons: { include: { revisions: true } } } });
    expect(builds.map((b) => b.rootUrl).sort()).toEqual([firefoxCi.rootUrl, communityTc.rootUrl].sort());
    const fromCommunity = builds.find((b) => b.rootUrl === communityTc.rootUrl)!;
    // Not announced, the run's resolution comes from the Queue API's status.
    expect(fromCommunity).toMatchObject({
      repository: "https://github.com/mozilla-l10n/firefox-l10n",
      state: "completed",
      resolvedAt: new Date("2026-03-02T14:16:58.906Z"),
    });
    expect(fromCommunity.comparisons[0]!.artifactUrl).toMatch(
      new RegExp(`^${communityTc.rootUrl}/api/queue/v1/task/${taskId}/runs/0/artifacts/public%2Fcompares%2F`),
    );
    expect(fromCommunity.comparisons.flatMap((c) => c.revisions.map((r) => r.repository))).toContain("https://github.com/l10n-central/de");
    expect(communityTc.count(new RegExp(`/task/${taskId}/status$`))).toBe(1);
  });

  it("takes the run's resolution from the job, from the message of a job queued before jobs carried it, else from the Queue API", async () => {
    const tasks = [0, 1, 2].map(() => standInTask({ artifacts: [] }));
    for (const task of tasks) communityTc.addTask(task);
    const [carried, legacy, neither] = await Promise.all([
      // The original message is not read: it announces nothing here.
      run(tcJob(communityTc.rootUrl, tasks[0]!, { withMessage: false, resolved: "2026-03-03T10:00:00.000Z" })),
      // Queued by an earlier version: no `resolved`, the message has it.
      run(tcJob(communityTc.rootUrl, tasks[1]!, { resolved: "2026-03-04T10:00:00.000Z", carries: "nothing" })),
      run(tcJob(communityTc.rootUrl, tasks[2]!, { withMessage: false, carries: "nothing" })),
    ]);
    expect([carried, legacy, neither].map((job) => job.failedReason)).toEqual([undefined, undefined, undefined]);
    expect("resolved" in legacy.data).toBe(false);
    const resolvedAt = async (taskId: string) => (await env.db.build.findFirstOrThrow({ where: { taskId } })).resolvedAt?.toISOString();
    expect(await Promise.all(tasks.map((task) => resolvedAt(task.taskId)))).toEqual([
      "2026-03-03T10:00:00.000Z",
      "2026-03-04T10:00:00.000Z",
      "2026-03-02T14:16:58.906Z",
    ]);
    expect(tasks.map((task) => communityTc.count(new RegExp(`/task/${task.taskId}/status$`)))).toEqual([0, 0, 1]);
  });

  it("fails a job that names no valid run, without asking Taskcluster", async () => {
    const task = standInTask({ artifacts: [] });
    const data = { ...tcJob(firefoxCi.rootUrl, task), taskId: "../../etc" };
    const job = await run(data, { jobId: `tc|bad|${slugid()}` });
    expect(job.failedReason).toBe("job does not name a Taskcluster run: taskId: must be a Taskcluster slugid");
    expect(job.attemptsMade).toBe(1);
  });
});
