import { Queue, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { MAX_JOBS_PER_PAGE } from "../../src/dashboard/bull-board.ts";
import { diffBackends } from "../../src/dashboard/extras.ts";
import { MAX_RUNNING_DIFFS, MAX_WAITING_DIFFS } from "../../src/dashboard/read-api.ts";
import { type DashboardHandle, startDashboard } from "../../src/dashboard/server.ts";
import type { VcsBackend } from "../../src/vcs/backend.ts";
import { syntheticMessage } from "../support/synthetic-jobs.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { createTwoRevisionClone } from "../support/two-revision-clone.ts";
import { waitFor } from "../support/wait-for.ts";

const REPO_URL = "http://127.0.0.1:1/l10n-central/fr";
// The bounds this test expects (checked against the code's constants below).
const PAGE_CAP = 100;
const RUNNING = 4;
const WAITING = 8;
const SECRET = "hunter2-dash";

let env: TestEnvironment;
let lifecycle: Lifecycle;
let dashboard: DashboardHandle;
let redis: Redis;
let workerRedis: Redis;
let revisions: string[] = [];

// The real hg diff, held at a gate the test opens, counting calls in flight.
const hgBackend = diffBackends().hg!;
let inFlight = 0;
let maxInFlight = 0;
let openGate: () => void = () => {};
let gate = new Promise<void>((resolve) => (openGate = resolve));
const countingHg: VcsBackend = {
  ...hgBackend,
  kind: "hg",
  async diff(...args) {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await gate;
      return await hgBackend.diff(...args);
    } finally {
      inFlight--;
    }
  },
};

beforeAll(async () => {
  env = await createTestEnvironment("dashboard-hostile");
  revisions = createTwoRevisionClone(env.clonesDir, REPO_URL, "a.ftl", "a = A\n", "a = B\n");
  await env.db.repository.create({ data: { name: "l10n-central/fr", url: REPO_URL, kind: "hg" } });

  const log = createLogger("silent", "test");
  lifecycle = new Lifecycle(log);
  dashboard = await startDashboard({ config: env.configWith({ DASHBOARD_PORT: "0" }), log, lifecycle, backends: { hg: countingHg } });
  redis = createRedis(env.config.redis.url, "producer");
  workerRedis = createRedis(env.config.redis.url, "worker");
}, 60_000);

afterAll(async () => {
  openGate();
  redis?.disconnect();
  workerRedis?.disconnect();
  await lifecycle?.shutdown();
  await env?.cleanup();
});

describe("Bull Board", () => {
  it(`lists at most ${PAGE_CAP} jobs per request, whatever jobsPerPage asks`, async () => {
    const queue = new Queue("dead-letter", { connection: redis, prefix: env.config.redis.prefix });
    await queue.addBulk(
      Array.from({ length: 150 }, (_, i) => ({
        name: "dead-letter",
        data: { kind: "dead-letter", reason: "r", message: syntheticMessage({ body: "x".repeat(1000) }) },
        opts: { jobId: `dead|${i}` },
      })),
    );
    const response = await fetch(`${dashboard.url}/queues/api/queues?activeQueue=dead-letter&status=waiting&page=1&jobsPerPage=100000`);
    const text = await response.text();
    expect(response.status).toBe(200);
    const listed = JSON.parse(text).queues.find((q: { name: string }) => q.name === "dead-letter");
    console.log(`[figure] Bull Board answer for jobsPerPage=100000 over 150 jobs: ${listed.jobs.length} jobs, ${text.length} bytes`);
    expect(listed.jobs.length).toBe(PAGE_CAP);
    expect(MAX_JOBS_PER_PAGE).toBe(PAGE_CAP);
    const repeated = (await (
      await fetch(`${dashboard.url}/queues/api/queues?activeQueue=dead-letter&status=waiting&page=1&jobsPerPage=10&jobsPerPage=100000`)
    ).json()) as { queues: Array<{ name: string; jobs: unknown[] }> };
    expect(repeated.queues.find((q) => q.name === "dead-letter")!.jobs.length).toBe(PAGE_CAP);
    const encoded = (await (await fetch(`${dashboard.url}/queues/api/queues?activeQueue=dead-letter&status=waiting&page=1&jobs%50erPage=100000`)).json()) as {
      queues: Array<{ name: string; jobs: unknown[] }>;
    };
    expect(encoded.queues.find((q) => q.name === "dead-letter")!.jobs.length).toBe(PAGE_CAP);
    // An allowed size is left alone.
    const small = (await (await fetch(`${dashboard.url}/queues/api/queues?activeQueue=dead-letter&status=waiting&page=2&jobsPerPage=10`)).json()) as {
      queues: Array<{ name: string; jobs: unknown[] }>;
    };
    expect(small.queues.find((q) => q.name === "dead-letter")!.jobs.length).toBe(10);
    await queue.close();
  });

  it("masks credentials in failure reasons and stack traces, in lists and single jobs", async () => {
    const queue = new Queue("tc-ingest", { connection: redis, prefix: env.config.redis.prefix });
    const worker = new Worker(
      "tc-ingest",
      async () => {
        throw new Error(`clone of https://elmo:${SECRET}@hg.example/x failed; token url https://${SECRET}@github.com/o/r`);
      },
      { connection: workerRedis, prefix: env.config.redis.prefix },
    );
    worker.on("error", () => {});
    await queue.add("tc-run", { kind: "tc-run" }, { jobId: "tc|leaky", attempts: 1 });
    await waitFor("the job to fail", async () => (await queue.getJobState("tc|leaky")) === "failed");
    await worker.close();
    const raw = await queue.getJob("tc|leaky");
    expect(raw!.failedReason).toContain(SECRET);
    expect((raw!.stacktrace ?? []).join("\n")).toContain(SECRET);

    for (const path of [
      "/queues/api/queues?activeQueue=tc-ingest&status=failed&page=1&jobsPerPage=10",
      `/queues/api/queues/tc-ingest/${encodeURIComponent("tc|leaky")}`,
    ]) {
      const response = await fetch(`${dashboard.url}${path}`);
      const text = await response.text();
      expect(response.status, path).toBe(200);
      expect(text, path).toContain("tc|leaky");
      expect(text, path).toContain("hg.example");
      expect(text, path).not.toContain(SECRET);
    }
    await queue.close();
  });
});

describe("/api", () => {
  it("masks credentials in the job history's errors", async () => {
    await env.db.jobRecord.create({
      data: {
        queue: "hg-sync",
        jobId: "hg-push|x|1",
        name: "hg-push",
        state: "failed",
        attempts: 1,
        error: `abort: HTTP Error 404 at https://elmo:${SECRET}@hg.example/x`,
      },
    });
    const response = await fetch(`${dashboard.url}/api/jobs?queue=hg-sync`);
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).toContain("hg.example");
    expect(text).not.toContain(SECRET);
  });

  it("answers 400, not 500, to a malformed percent-escape in a path", async () => {
    for (const path of [
      "/api/repositories/%E0%A4%A",
      "/api/repositories/%E0%A4%A/pushes",
      "/queues/api/queues/tc-ingest/%E0%A4%A",
      "/queues/api/queues/%E0%A4%A/x",
    ]) {
      const response = await fetch(`${dashboard.url}${path}`);
      expect(response.status, path).toBe(400);
      expect(await response.text(), path).not.toMatch(/at .*\.js|URIError/);
    }
  });

  it(`runs at most ${RUNNING} diffs at once, queues ${WAITING}, and answers the rest 503 with Retry-After`, async () => {
    const total = 20;
    const path = `/api/repositories/l10n-central/fr/diff?from=${revisions[0]}&to=${revisions[1]}`;
    const answers: Array<{ status: number; retryAfter: string | null; body: any }> = [];
    const requests = Array.from({ length: total }, () =>
      fetch(`${dashboard.url}${path}`).then(async (response) => {
        answers.push({ status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.json() });
      }),
    );
    // Either the bound holds (the refused ones have answered) or it is broken (more than the bound in flight).
    await waitFor(
      "the diffs beyond the bound to be refused, or the bound to be exceeded",
      () => (answers.length >= total - RUNNING - WAITING && inFlight === RUNNING) || maxInFlight > RUNNING,
    );
    expect(maxInFlight).toBeLessThanOrEqual(RUNNING);
    expect(inFlight).toBe(RUNNING);
    expect([MAX_RUNNING_DIFFS, MAX_WAITING_DIFFS]).toEqual([RUNNING, WAITING]);
    openGate();
    await Promise.all(requests);
    console.log(
      `[figure] ${total} simultaneous diff requests: at most ${maxInFlight} diff processes at once; ${answers.filter((a) => a.status === 200).length} answered 200, ${answers.filter((a) => a.status === 503).length} answered 503`,
    );
    expect(maxInFlight).toBeLessThanOrEqual(RUNNING);
    const refused = answers.filter((a) => a.status === 503);
    expect(refused).toHaveLength(total - RUNNING - WAITING);
    for (const answer of refused) expect(Number(answer.retryAfter)).toBeGreaterThan(0);
    const served = answers.filter((a) => a.status === 200);
    expect(served).toHaveLength(RUNNING + WAITING);
    for (const answer of served) expect(answer.body.diff).toContain("+a = B");
    // The gate stays open: the slots are free again.
    gate = Promise.resolve();
    expect((await fetch(`${dashboard.url}${path}`)).status).toBe(200);
  });
});

describe("security headers", () => {
  it("every answer has helmet's headers; the CSP is strict outside /queues and lets Bull Board's page load under it", async () => {
    const api = await fetch(`${dashboard.url}/api/repositories`);
    expect(api.headers.get("x-content-type-options")).toBe("nosniff");
    expect(api.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    expect(api.headers.get("content-security-policy")).toContain("default-src 'none'");
    const missing = await fetch(`${dashboard.url}/nothing-here`);
    expect(missing.headers.get("content-security-policy")).toContain("default-src 'none'");

    const board = await fetch(`${dashboard.url}/queues`);
    expect(board.status).toBe(200);
    const csp = board.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("upgrade-insecure-requests");
    expect(board.headers.get("x-content-type-options")).toBe("nosniff");
  });
});
