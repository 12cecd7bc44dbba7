/**
 * Hostile senders: whatever a task uploads, whatever the Queue API, a
 * storage host or a pushlog server answers, tc-ingest, the artifact links and
 * the pushlog client fetch nothing from hosts outside their lists, follow a
 * bounded number of redirects, never repeat an upstream body in a failure
 * reason, and keep a job's memory bounded.
 *
 * Real HTTP servers on 127.0.0.1: the Queue API stand-in (its storage on the
 * same host), a redirector, and an "outside" server on 127.0.0.2 (another
 * host as far as URLs go; Linux routes all of 127/8 to the loopback device)
 * that records every request it gets and would serve a valid elmo.json.
 * The tc-ingest pool is the real one (BullMQ, PostgreSQL); the memory check
 * runs it in a child process.
 */
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Job } from "bullmq";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TcIngestJob } from "../../src/contract/contracts.ts";
import { tcIngestJobRequest } from "../../src/contract/job-requests.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import type { Config } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { PermanentError } from "../../src/core/permanent-error.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { artifactLinkRouter } from "../../src/dashboard/artifact-link.ts";
import { readApiRouter } from "../../src/dashboard/read-api.ts";
import { fetchPushlogPage } from "../../src/jobs/hg-sync/pushlog-client.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import { tcIngestPool } from "../../src/jobs/tc-ingest/pool.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { createTestEnvironment, deleteRedisKeys, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { compareLocalesArtifacts, type ElmoFile, GECKO_STRINGS, hex40, realisticElmoJson, realSummary, slugid, standInTask, tcJob } from "./fixtures.ts";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test");
const MAX_COMPARISONS = 500;
let env: TestEnvironment;
let config: Config;
let standIn: QueueApiStandIn;
let outside: RecordingServer;
let redirector: RecordingServer;
let dashboard: RecordingServer;
let lifecycle: Lifecycle;
let redis: Redis;
let queues: Queues;

interface RecordingServer {
  url: string;
  requests: string[];
  server: Server;
}

/** A server that records every request path and answers with `handle`. */
async function recordingServer(host: string, handle: Parameters<typeof createServer>[1] & {}): Promise<RecordingServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? "/");
    handle(req, res);
  });
  server.listen(0, host);
  await once(server, "listening");
  return { url: `http://${host}:${(server.address() as AddressInfo).port}`, requests, server };
}

beforeAll(async () => {
  env = await createTestEnvironment("tc-hostile");
  standIn = await startQueueApiStandIn();
  // Outside the Taskcluster hosts: would hand out a perfectly valid elmo.json.
  const validElmo = JSON.stringify(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() }));
  outside = await recordingServer("127.0.0.2", (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(validElmo);
  });
  // On the stand-in's host (allowed): /to-outside redirects off it, /loop/N redirects to /loop/N+1.
  redirector = await recordingServer("127.0.0.1", (req, res) => {
    const loop = /^\/loop\/(\d+)$/.exec(req.url ?? "");
    res.writeHead(302, { location: loop ? `/loop/${Number(loop[1]) + 1}` : `${outside.url}/elmo.json` });
    res.end();
  });
  config = env.configWith({ TASKCLUSTER_ROOT_URL: standIn.rootUrl, ELMO_JSON_MAX_COMPARISONS: String(MAX_COMPARISONS) });
  lifecycle = new Lifecycle(log);
  await startPool(tcIngestPool, { config, log, lifecycle, historySweepIntervalMs: 200 });
  redis = createRedis(config.redis.url, "worker");
  queues = openQueues(redis, config.redis.prefix);

  const app = express();
  app.use(artifactLinkRouter({ db: env.db, log, requestTimeoutMs: 2_000, taskcluster: config.taskcluster }));
  app.use(readApiRouter({ config, db: env.db, log, backends: {} }));
  const server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  dashboard = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: [], server };
});

afterAll(async () => {
  await lifecycle?.shutdown();
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  for (const s of [outside, redirector, dashboard]) {
    s?.server.closeAllConnections();
    s?.server.close();
  }
  await standIn?.close();
  await env?.cleanup();
});

const run = (data: TcIngestJob) => runOn(data, queues);

async function runOn(data: TcIngestJob, on: Queues): Promise<Job> {
  const request = tcIngestJobRequest(data);
  await addJob(on, { ...request, opts: { ...request.opts, backoff: { type: "fixed", delay: 20 } } });
  return waitFor(
    `job ${request.opts.jobId} to finish`,
    async () => {
      const job = await on["tc-ingest"].getJob(request.opts.jobId);
      return job?.finishedOn ? job : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

/** A run whose elmo.json is a reference artifact: getArtifact 303s to `url`, wherever the task said. */
function taskWithElmoAt(url: string) {
  const artifacts = compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() }));
  artifacts[0] = { name: artifacts[0]!.name, storageType: "reference", url };
  const task = standInTask({ artifacts });
  standIn.addTask(task);
  return task;
}

const outsideHost = () => new URL(outside.url).host;

describe("redirects stay on the Taskcluster hosts", () => {
  it("does not fetch elmo.json from a host the Queue API's 303 names outside them: the job fails at once, naming the host", async () => {
    const task = taskWithElmoAt(`${outside.url}/elmo.json`);
    const job = await run(tcJob(standIn.rootUrl, task));

    expect(job.failedReason).toBe(
      `artifact public/compare-locales/elmo.json of task ${task.taskId} run 0: refused redirect to ${outsideHost()}/elmo.json: host ${outsideHost()} is not one of the Taskcluster hosts (the root URLs' hosts and TC_ARTIFACT_HOSTS)`,
    );
    expect(job.attemptsMade).toBe(1);
    expect(outside.requests).toEqual([]);
    expect(await env.db.build.count({ where: { taskId: task.taskId } })).toBe(0);
  });

  it("refuses a redirect chain that leaves them at its second hop", async () => {
    const task = taskWithElmoAt(`${redirector.url}/to-outside`);
    const before = redirector.requests.length;
    const job = await run(tcJob(standIn.rootUrl, task));

    expect(job.failedReason).toMatch(
      new RegExp(`run 0: refused redirect to ${outsideHost()}/elmo.json: host ${outsideHost()} is not one of the Taskcluster hosts`),
    );
    expect(job.attemptsMade).toBe(1);
    expect(redirector.requests.slice(before)).toEqual(["/to-outside"]);
    expect(outside.requests).toEqual([]);
  });

  it("gives up after five redirects", async () => {
    const task = taskWithElmoAt(`${redirector.url}/loop/1`);
    const before = redirector.requests.length;
    const job = await run(tcJob(standIn.rootUrl, task));

    // The Queue API's 303 is the first of the five followed; the sixth is not.
    expect(job.failedReason).toBe(
      `artifact public/compare-locales/elmo.json of task ${task.taskId} run 0: more than 5 redirects (the last from ${new URL(redirector.url).host}/loop/5)`,
    );
    expect(job.attemptsMade).toBe(1);
    expect(redirector.requests.slice(before)).toEqual(["/loop/1", "/loop/2", "/loop/3", "/loop/4", "/loop/5"]);
  });

  it("keeps taskcluster-client's calls on the root URL's host: a 303 answering task() is not followed, and its body is not taken for the task", async () => {
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    standIn.addTask(task);
    const location = `${outside.url}/task`;
    standIn.failNext({ path: new RegExp(`/task/${task.taskId}$`), status: 303, location, body: JSON.stringify({ storageType: "reference", url: location }) });

    const job = await run(tcJob(standIn.rootUrl, task));
    expect(await job.getState()).toBe("completed");
    // The redirect's answer was refused (not a task definition) and the job retried.
    expect(job.attemptsMade).toBe(2);
    expect(job.stacktrace?.join("\n")).toMatch(/unexpected answer from the Queue API \(metadata/);
    expect(outside.requests).toEqual([]);
    expect(await env.db.build.findFirstOrThrow({ where: { taskId: task.taskId } })).toMatchObject({
      source: expect.stringMatching(/^https:\/\/hg\.mozilla\.org\//),
    });
  });

  it("refuses a job naming a root URL that is not a configured deployment, without a request", async () => {
    const task = standInTask({ artifacts: [] });
    const job = await run(tcJob(outside.url, task));
    expect(job.failedReason).toBe(`root URL ${outside.url} is not a configured Taskcluster deployment (TASKCLUSTER_ROOT_URL, TC_EXTRA_SOURCES)`);
    expect(job.attemptsMade).toBe(1);
    expect(outside.requests).toEqual([]);
  });
});

describe("artifact links", () => {
  async function ingestWithDetailAt(url: string) {
    const elmo = realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() });
    const artifacts = compareLocalesArtifacts(elmo).map((artifact) =>
      artifact.name.endsWith("browser.de.json") ? { name: artifact.name, storageType: "reference" as const, url } : artifact,
    );
    const task = standInTask({ artifacts });
    standIn.addTask(task);
    const job = await run(tcJob(standIn.rootUrl, task));
    expect(job.failedReason).toBeUndefined();
    const comparisons = await env.db.comparison.findMany({ where: { build: { taskId: task.taskId } }, orderBy: { id: "asc" } });
    return { task, comparisons };
  }

  it("answer 502 instead of redirecting to a host the Queue API's 303 names outside the Taskcluster hosts", async () => {
    const { comparisons } = await ingestWithDetailAt(`${outside.url}/phishing`);
    const answer = await fetch(`${dashboard.url}/artifacts/${comparisons[0]!.id}`, { redirect: "manual" });

    expect(answer.status).toBe(502);
    expect(answer.headers.get("location")).toBeNull();
    const page = await answer.text();
    expect(page).toContain("Artifact host not allowed");
    expect(page).toContain(`host ${outsideHost()} is not one of the Taskcluster hosts`);
    expect(page).not.toContain("/phishing");
    expect(await env.db.comparison.findUniqueOrThrow({ where: { id: comparisons[0]!.id } })).toMatchObject({ resolvedUrl: null });
    expect(outside.requests).toEqual([]);
  });

  it("do not serve a stored resolution outside the Taskcluster hosts (e.g. from an older version): they resolve again", async () => {
    const { task, comparisons } = await ingestWithDetailAt(`${outside.url}/phishing`);
    const comparison = comparisons[1]!; // browser.fr.json, a real s3 artifact
    await env.db.comparison.update({
      where: { id: comparison.id },
      data: { resolvedUrl: `${outside.url}/stored`, resolvedExpiresAt: new Date(Date.now() + 3_600_000) },
    });

    const answer = await fetch(`${dashboard.url}/artifacts/${comparison.id}`, { redirect: "manual" });
    expect(answer.status).toBe(302);
    expect(answer.headers.get("location")).toBe(`${standIn.storageUrl}/${task.taskId}/0/public/compare-locales/compares/browser.fr.json`);
  });
});

describe("pushlog", () => {
  let hg: HgServer;
  beforeAll(async () => {
    hg = await startHgServer();
  });
  afterAll(async () => {
    await hg?.close();
  });

  it("refuses a 301 to another host, with no request there, and follows one on the repository's own host", async () => {
    await hg.createRepo("l10n-central/de");
    await hg.createRepo("l10n-central/de-moved");
    const { nodes } = await hg.push("l10n-central/de-moved", [{ message: "moved here" }]);
    const before = outside.requests.length;

    hg.redirectPushlog("l10n-central/de", `${outside.url}/json-pushes?version=2&full=1&startID=0&endID=200`);
    const refused = await fetchPushlogPage(hg.repoUrl("l10n-central/de"), 0, 200, 5_000).catch((error: Error) => error);
    expect(refused).toBeInstanceOf(PermanentError);
    expect((refused as Error).message).toBe(
      `pushlog of ${hg.repoUrl("l10n-central/de")}: refused redirect to ${outsideHost()}/json-pushes: host ${outsideHost()} is not one of ALLOWED_HOSTS (the repository's host ${new URL(hg.url).host})`,
    );
    expect(outside.requests.length).toBe(before);

    hg.redirectPushlog("l10n-central/de", `${hg.url}/l10n-central/de-moved/json-pushes?version=2&full=1&startID=0&endID=200`);
    const page = await fetchPushlogPage(hg.repoUrl("l10n-central/de"), 0, 200, 5_000);
    expect(page.pushes.map((push) => push.changesets)).toEqual([nodes]);
    hg.redirectPushlog("l10n-central/de", undefined);
  });
});

describe("failure reasons", () => {
  it("never carry an upstream body: not in failedReason, the stack traces, JobRecord or /api/jobs", async () => {
    const marker = `MARKER-${slugid()}`;
    // 1. The Queue API's own error body (Taskcluster puts a message there).
    const unknown = standInTask({ artifacts: [] });
    standIn.addTask(unknown);
    standIn.failNext({
      path: new RegExp(`/task/${unknown.taskId}$`),
      status: 404,
      body: JSON.stringify({ code: "ResourceNotFound", message: `${marker} task`, requestInfo: {} }),
    });
    // 2. The storage server's error page.
    const forbidden = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    standIn.addTask(forbidden);
    standIn.failNext({
      server: "storage",
      path: new RegExp(`/${forbidden.taskId}/`),
      status: 403,
      body: `<Error><Message>${marker} storage</Message></Error>`,
    });
    // 3. An elmo.json that is not JSON (the parser's message would quote it).
    const garbage = standInTask({ artifacts: [{ name: "public/elmo.json", content: `${marker} {{{ not json` }] });
    standIn.addTask(garbage);
    // 4. A listing that is not JSON although it says so (the client's parser would quote it), once.
    const listing = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    standIn.addTask(listing);
    standIn.failNext({ path: new RegExp(`/task/${listing.taskId}/runs/0/artifacts`), status: 200, body: `${marker} not json` });

    const jobs = await Promise.all([unknown, forbidden, garbage, listing].map((task) => run(tcJob(standIn.rootUrl, task))));
    expect(jobs.map((job) => job.failedReason)).toEqual([
      `task ${unknown.taskId}: HTTP 404 ResourceNotFound from ${standIn.rootUrl}`,
      `artifact public/compare-locales/elmo.json of task ${forbidden.taskId} run 0: HTTP 403 from ${new URL(standIn.storageUrl).host}/${forbidden.taskId}/0/public/compare-locales/elmo.json`,
      `public/elmo.json of task ${garbage.taskId} run 0: elmo.json is not JSON`,
      // the first attempt's reason; the retry completed
      `artifacts of task ${listing.taskId} run 0: unexpected answer from the Queue API (HTTP 200) from ${standIn.rootUrl}`,
    ]);
    expect(await jobs[3]!.getState()).toBe("completed");
    expect(jobs[3]!.attemptsMade).toBe(2);

    const ids = jobs.map((job) => job.id!);
    const records = await waitFor("job history of the four jobs", async () => {
      const rows = await env.db.jobRecord.findMany({ where: { jobId: { in: ids } } });
      return rows.length >= 5 ? rows : undefined;
    });
    const api = await (await fetch(`${dashboard.url}/api/jobs?queue=tc-ingest&limit=200`)).text();
    for (const text of [...jobs.map((job) => `${job.failedReason}\n${(job.stacktrace ?? []).join("\n")}`), JSON.stringify(records), api]) {
      expect(text).not.toContain(marker);
    }
    expect(api).toContain(`HTTP 404 ResourceNotFound from ${standIn.rootUrl}`);
  });
});

describe("memory", () => {
  it("refuses elmo.json with more comparisons than ELMO_JSON_MAX_COMPARISONS, at once", async () => {
    const task = standInTask({ artifacts: [{ name: "public/elmo.json", content: manyComparisons(MAX_COMPARISONS + 1) }] });
    standIn.addTask(task);
    const job = await run(tcJob(standIn.rootUrl, task));
    expect(job.failedReason).toBe(
      `public/elmo.json of task ${task.taskId} run 0: elmo.json holds ${MAX_COMPARISONS + 1} comparisons, more than ELMO_JSON_MAX_COMPARISONS (${MAX_COMPARISONS}); refused`,
    );
    expect(job.attemptsMade).toBe(1);
  });

  it("keeps a worker's memory bounded for a 100,000-comparison elmo.json served gzipped: refused past ELMO_JSON_MAX_BYTES, RSS grows < 64 MB", async () => {
    // The worker in a process of its own, default limits, one job at a time,
    // on BullMQ keys of its own (the in-process pool must not take its jobs).
    const prefix = `${config.redis.prefix}-memory`;
    const child: ChildProcess = fork(fileURLToPath(new URL("./memory-worker.ts", import.meta.url)), {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, ...env.env, BULLMQ_PREFIX: prefix, TASKCLUSTER_ROOT_URL: standIn.rootUrl, LOG_LEVEL: "silent" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const own = openQueues(redis, prefix);
    const run = (data: TcIngestJob) => runOn(data, own);
    try {
      await once(child, "message");
      const status = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) * 1024;
      // A realistic job and a refused one first, so that the code paths are loaded and compiled.
      const warm = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
      const refused = standInTask({ artifacts: [{ name: "public/elmo.json", content: JSON.stringify(manyComparisons(15_000)) }] });
      for (const task of [warm, refused]) standIn.addTask(task);
      const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
      expect((await run(tcJob(standIn.rootUrl, warm))).failedReason).toBeUndefined();
      const warmed = status("VmRSS");
      writeFileSync(`/proc/${child.pid}/clear_refs`, "5"); // resets VmHWM, the peak RSS
      const first = await run(tcJob(standIn.rootUrl, refused));
      console.log(
        `first over-limit file (15,000 comparisons, ${mb(Buffer.byteLength(refused.runs[0]!.artifacts[0]!.content as string))}): worker RSS ${mb(warmed)} before, peak ${mb(status("VmHWM"))} (first use of the path included); job: ${first.failedReason ?? "completed"}`,
      );

      const huge = manyComparisons(100_000);
      const text = JSON.stringify(huge);
      const gzipped = gzipSync(text).byteLength;
      const task = standInTask({ artifacts: [{ name: "public/elmo.json", content: text }] });
      standIn.addTask(task);

      const before = status("VmRSS");
      writeFileSync(`/proc/${child.pid}/clear_refs`, "5");
      const job = await run(tcJob(standIn.rootUrl, task));
      const peak = status("VmHWM");
      const growth = peak - before;
      console.log(
        `100,000-comparison elmo.json (${mb(Buffer.byteLength(text))}, ${mb(gzipped)} gzipped): worker RSS before ${mb(before)}, peak during the job ${mb(peak)}, growth ${mb(growth)}; job: ${job.failedReason ?? "completed"}`,
      );

      expect(job.failedReason).toBe(
        `artifact public/elmo.json of task ${task.taskId} run 0: larger than ELMO_JSON_MAX_BYTES (4194304 bytes) once decoded; refused`,
      );
      expect(job.attemptsMade).toBe(1);
      expect(growth).toBeLessThan(64 * 1024 * 1024);

      // For the record (not asserted): the largest elmo.json the defaults accept, stored.
      const largest = JSON.stringify(manyComparisons(5_000));
      const accepted = standInTask({ artifacts: [{ name: "public/elmo.json", content: largest }] });
      standIn.addTask(accepted);
      const acceptedBefore = status("VmRSS");
      writeFileSync(`/proc/${child.pid}/clear_refs`, "5");
      const stored = await run(tcJob(standIn.rootUrl, accepted));
      console.log(
        `largest accepted (5,000 comparisons, ${mb(Buffer.byteLength(largest))}): worker RSS before ${mb(acceptedBefore)}, peak during the job ${mb(status("VmHWM"))}, growth ${mb(status("VmHWM") - acceptedBefore)}; job: ${stored.failedReason ?? "completed"}`,
      );
    } finally {
      child.send("stop");
      if (child.exitCode === null) await once(child, "exit");
      await closeQueues(own);
      await deleteRedisKeys(prefix);
    }
  }, 180_000);
});

/**
 * A schema-valid elmo.json with `count` distinct (locale, config)
 * comparisons; 100,000 of them make 30 MB, under the 32 MiB an earlier
 * version accepted (and took some 450 MB of RSS to ingest).
 */
function manyComparisons(count: number): ElmoFile {
  const locales = Array.from({ length: 400 }, (_, i) => `x${String.fromCharCode(97 + (i % 26))}-L${i}`);
  const revision = hex40();
  return {
    version: "1.0",
    "compare-locales": "9.0.4",
    repository: GECKO_STRINGS,
    comparisons: Array.from({ length: count }, (_, i) => {
      const locale = locales[i % locales.length]!;
      return {
        locale,
        config: `_configs/product-${Math.floor(i / locales.length)}.toml`,
        artifact: `compares/${i}.json`,
        revisions: { [`/l10n-central/${locale}/`]: revision },
        summary: realSummary("de"),
      };
    }),
  };
}
