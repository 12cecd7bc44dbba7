/**
 * Bull Board in a real browser (Debian's chromium through playwright-core):
 * the three queues are listed; with credentials a failed job is retried from
 * the UI and completes; without credentials the board is read-only and the
 * retry route is refused with 405 (and the authenticated board refuses an
 * unauthenticated request with 401). Screenshots go to test-artifacts/.
 */
import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue, Worker } from "bullmq";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TcIngestJob } from "../../src/contract/contracts.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { type DashboardHandle, startDashboard } from "../../src/dashboard/server.ts";
import { syntheticMessage, syntheticTcRun } from "../support/synthetic-jobs.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

const ARTIFACTS = path.resolve("test-artifacts");
const USER = "ops";
const PASSWORD = "board-secret-4711";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let env: TestEnvironment;
let lifecycle: Lifecycle;
let withAuth: DashboardHandle;
let readOnly: DashboardHandle;
let redis: Redis;
let workerRedis: Redis;
let queue: Queue;
let worker: Worker;
let profileDir: string;
let browser: BrowserContext;
// The job "fixes itself" once the test says so, as after a deploy.
let fixed = false;

/** A job whose original message carries secrets the board must never show. */
function payload(taskId: string): TcIngestJob {
  return {
    ...syntheticTcRun(taskId),
    message: syntheticMessage({
      exchange: "exchange/taskcluster-queue/v1/task-completed",
      routingKey: "primary.x",
      body: JSON.stringify({ status: { taskId }, note: "see amqps://elmo:hunter2@pulse.example/" }),
      headers: { authorization: "Bearer sekrit-token" },
    }),
  };
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  env = await createTestEnvironment("board-browser");
  const log = createLogger("silent", "test");
  lifecycle = new Lifecycle(log);
  withAuth = await startDashboard({ config: env.configWith({ DASHBOARD_PORT: "0", DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD }), log, lifecycle });
  readOnly = await startDashboard({ config: env.configWith({ DASHBOARD_PORT: "0" }), log, lifecycle });

  redis = createRedis(env.config.redis.url, "producer");
  queue = new Queue("tc-ingest", { connection: redis, prefix: env.config.redis.prefix });
  workerRedis = createRedis(env.config.redis.url, "worker");
  worker = new Worker(
    "tc-ingest",
    async () => {
      if (!fixed) throw new Error("Queue API answered 503");
      return "stored";
    },
    { connection: workerRedis, prefix: env.config.redis.prefix },
  );
  worker.on("error", () => {});
  await queue.add("tc-run", payload("retry-me"), { jobId: "tc|retry-me", attempts: 1 });
  await queue.add("tc-run", payload("stay-failed"), { jobId: "tc|stay-failed", attempts: 1 });
  await waitFor("both jobs failed", async () => (await queue.getFailedCount()) === 2);

  profileDir = await mkdtemp(path.join(tmpdir(), "pb-chromium-"));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    httpCredentials: { username: USER, password: PASSWORD },
  });
});

afterAll(async () => {
  await browser?.close();
  if (profileDir) await rm(profileDir, { recursive: true, force: true });
  await worker?.close();
  await queue?.close();
  redis?.disconnect();
  workerRedis?.disconnect();
  await lifecycle?.shutdown();
  await env?.cleanup();
});

describe("Bull Board", () => {
  it("lists the three queues, retries a failed job from the UI with credentials, and never shows secrets", async () => {
    const page = await browser.newPage();
    // The dashboard's Content-Security-Policy (helmet) must not block the board.
    const blocked: string[] = [];
    page.on("console", (entry) => {
      if (/Content Security Policy|Refused to (load|execute|apply)/i.test(entry.text())) blocked.push(entry.text());
    });
    const first = await page.goto(`${withAuth.url}/queues`);
    expect(first?.headers()["content-security-policy"]).toContain("script-src 'self'");
    for (const name of ["hg-sync", "tc-ingest", "dead-letter"]) {
      await page.getByText(name, { exact: true }).first().waitFor({ timeout: 20_000 });
    }
    // The board renders "Loading..." until its first data request answers.
    await page.getByText(/^Loading/).waitFor({ state: "detached", timeout: 20_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "board-overview.png"), fullPage: true });

    await page.goto(`${withAuth.url}/queues/queue/tc-ingest?status=failed`);
    await page.getByText("retry-me").first().waitFor({ timeout: 20_000 });
    // Job data (the original message) is rendered without its secrets.
    await page.getByText("Data", { exact: true }).first().click();
    await page.getByText("pulse.example").first().waitFor({ timeout: 10_000 });
    const html = await page.content();
    expect(html).not.toContain("hunter2");
    expect(html).not.toContain("sekrit-token");

    fixed = true;
    // The job card's actions are icon buttons; retry shows the refresh icon,
    // and Bull Board asks for confirmation.
    const card = page.locator('xpath=//*[normalize-space(text())="tc|retry-me"]/ancestor::*[.//button][1]');
    await card.locator("button:has(svg.lucide-refresh-cw)").click();
    const retried = page.waitForResponse((response) => response.url().includes("/retry") && response.request().method() === "PUT");
    await page.getByRole("button", { name: "Confirm", exact: true }).click();
    const response = await retried;
    expect(response.status()).toBeGreaterThanOrEqual(200);
    expect(response.status()).toBeLessThan(300);
    await waitFor("the retried job completed", async () => (await queue.getJobState("tc|retry-me")) === "completed");
    await page.screenshot({ path: path.join(ARTIFACTS, "board-after-retry.png"), fullPage: true });
    expect(blocked).toEqual([]);
    await page.close();
  });

  it("refuses actions without credentials: 405 on the read-only board, 401 on the protected one", async () => {
    const page = await browser.newPage();
    await page.goto(`${readOnly.url}/queues/queue/tc-ingest?status=failed`);
    await page.getByText("stay-failed").first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "board-read-only.png"), fullPage: true });
    expect(await page.getByRole("button", { name: "Retry all" }).count()).toBe(0);

    const readOnlyRetry = await page.request.put(`${readOnly.url}/queues/api/queues/tc-ingest/${encodeURIComponent("tc|stay-failed")}/retry/failed`);
    expect(readOnlyRetry.status()).toBe(405);
    const readOnlyRetryAll = await fetch(`${readOnly.url}/queues/api/queues/tc-ingest/retry/failed`, { method: "PUT" });
    expect(readOnlyRetryAll.status).toBe(405);
    const anonymous = await fetch(`${withAuth.url}/queues/api/queues/tc-ingest/retry/failed`, { method: "PUT" });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toContain("Basic");
    const wrongPassword = await fetch(`${withAuth.url}/queues/api/queues/tc-ingest/retry/failed`, {
      method: "PUT",
      headers: { authorization: `Basic ${Buffer.from(`${USER}:nope`).toString("base64")}` },
    });
    expect(wrongPassword.status).toBe(401);
    expect(await queue.getJobState("tc|stay-failed")).toBe("failed");
    await page.close();
  });
});
