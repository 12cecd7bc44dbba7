/**
 * GET /artifacts/:comparisonId against real rows (ingested from the Queue
 * API stand-in) and the stand-in's getArtifact redirects.
 */
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/log.ts";
import { artifactLinkRouter, RESOLVED_URL_TTL_MS } from "../../src/dashboard/artifact-link.ts";
import { ingestRun } from "../../src/jobs/tc-ingest/ingest-run.ts";
import { QueueApi } from "../../src/jobs/tc-ingest/queue-api.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, standInTask, tcJob } from "./fixtures.ts";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test");
let env: TestEnvironment;
let standIn: QueueApiStandIn;
let server: Server;
let base: string;
const clients = new Map<string, QueueApi>();

beforeAll(async () => {
  env = await createTestEnvironment("artifact-link");
  standIn = await startQueueApiStandIn();
  const app = express();
  app.use(artifactLinkRouter({ db: env.db, log, requestTimeoutMs: 2_000, taskcluster: env.configWith({ TASKCLUSTER_ROOT_URL: standIn.rootUrl }).taskcluster }));
  server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  for (const client of clients.values()) client.close();
  await standIn?.close();
  await env?.cleanup();
});

/** Ingests a run (directly, no queue) and returns its comparisons by locale/config, in elmo.json order. */
async function ingest(options: { expires?: string } = {}) {
  const elmo = realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() });
  const artifacts = compareLocalesArtifacts(elmo).map((artifact) => (options.expires ? { ...artifact, expires: options.expires } : artifact));
  const task = standInTask({ artifacts });
  standIn.addTask(task);
  const queueApi = (rootUrl: string) => clients.get(rootUrl) ?? clients.set(rootUrl, new QueueApi(rootUrl, 2_000)).get(rootUrl)!;
  const { buildId } = await ingestRun(tcJob(standIn.rootUrl, task), { db: env.db, log, queueApi });
  const comparisons = await env.db.comparison.findMany({ where: { buildId }, orderBy: { id: "asc" } });
  return { task, comparisons };
}

const get = (path: string) => fetch(`${base}${path}`, { redirect: "manual" });

describe("artifact links", () => {
  it("resolves on the first request, stores the URL until the artifact expires, and redirects from the database afterwards", async () => {
    const { task, comparisons } = await ingest();
    const comparison = comparisons[0]!;
    const getArtifact = new RegExp(`/task/${task.taskId}/runs/0/artifacts/public%2Fcompare-locales%2Fcompares%2Fbrowser.de.json$`);

    const first = await get(`/artifacts/${comparison.id}`);
    expect(first.status).toBe(302);
    const storageUrl = `${standIn.storageUrl}/${task.taskId}/0/public/compare-locales/compares/browser.de.json`;
    expect(first.headers.get("location")).toBe(storageUrl);
    expect(standIn.count(getArtifact)).toBe(1);
    const stored = await env.db.comparison.findUniqueOrThrow({ where: { id: comparison.id } });
    expect(stored).toMatchObject({ resolvedUrl: storageUrl, resolvedExpiresAt: comparison.artifactExpiresAt });

    const second = await get(`/artifacts/${comparison.id}`);
    expect(second.status).toBe(302);
    expect(second.headers.get("location")).toBe(storageUrl);
    expect(standIn.count(getArtifact)).toBe(1);

    // The redirect leads to the artifact itself.
    expect(await (await fetch(storageUrl)).json()).toEqual({ details: {} });
  });

  it("answers 410 once the artifact has expired, without asking Taskcluster", async () => {
    const { task, comparisons } = await ingest({ expires: "2026-01-01T00:00:00.000Z" });
    const before = standIn.requests.length;
    const answer = await get(`/artifacts/${comparisons[1]!.id}`);
    expect(answer.status).toBe(410);
    expect(answer.headers.get("content-type")).toMatch(/text\/html/);
    expect(await answer.text()).toContain(`The artifact public/compare-locales/compares/browser.fr.json expired on 2026-01-01T00:00:00.000Z`);
    expect(standIn.requests.slice(before).filter((r) => r.path.includes(task.taskId))).toEqual([]);
  });

  it("answers 502 while the Queue API is down or failing, stores nothing, and resolves once it is back", async () => {
    const { comparisons } = await ingest();
    const id = comparisons[2]!.id;
    standIn.failNext({ path: /compares%2Ftoolkit.de.json$/, status: 503 });
    standIn.failNext({ path: /compares%2Ftoolkit.de.json$/, status: "reset" });

    for (const reason of [/HTTP 503/, /ECONNRESET|SocketError|other side closed|fetch failed/]) {
      const answer = await get(`/artifacts/${id}`);
      expect(answer.status).toBe(502);
      expect(await answer.text()).toMatch(reason);
    }
    expect(await env.db.comparison.findUniqueOrThrow({ where: { id } })).toMatchObject({ resolvedUrl: null });

    expect((await get(`/artifacts/${id}`)).status).toBe(302);
  });

  it("answers 502 when the deployment cannot be reached at all", async () => {
    const gone = await startQueueApiStandIn();
    const { comparisons } = await ingest();
    await gone.close();
    const artifactUrl = `${gone.rootUrl}/api/queue/v1/task/x/runs/0/artifacts/public%2Fgone.json`;
    await env.db.comparison.update({ where: { id: comparisons[0]!.id }, data: { artifactUrl, artifactExpiresAt: null } });
    const answer = await get(`/artifacts/${comparisons[0]!.id}`);
    expect(answer.status).toBe(502);
    expect(await answer.text()).toContain("ECONNREFUSED");
  });

  it("answers 404 for an unknown comparison or an artifact Taskcluster does not have", async () => {
    for (const path of ["/artifacts/999999999", "/artifacts/not-a-number", "/artifacts/1e3"]) {
      const answer = await get(path);
      expect(answer.status).toBe(404);
      expect(await answer.text()).toContain("Comparison not found");
    }

    const { task, comparisons } = await ingest();
    standIn.removeArtifact(task.taskId, 0, "public/compare-locales/compares/toolkit.fr.json");
    const answer = await get(`/artifacts/${comparisons[3]!.id}`);
    expect(answer.status).toBe(404);
    expect(await answer.text()).toContain("is not available (HTTP 404)");
  });

  it("uses a conservative TTL when the artifact's expiry is unknown, and asks again after it", async () => {
    const { task, comparisons } = await ingest();
    const id = comparisons[0]!.id;
    await env.db.comparison.update({ where: { id }, data: { artifactExpiresAt: null } });
    const started = Date.now();
    expect((await get(`/artifacts/${id}`)).status).toBe(302);
    const stored = await env.db.comparison.findUniqueOrThrow({ where: { id } });
    expect(stored.resolvedExpiresAt!.getTime()).toBeGreaterThanOrEqual(started + RESOLVED_URL_TTL_MS - 1000);
    expect(stored.resolvedExpiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + RESOLVED_URL_TTL_MS);

    // Past the TTL, the link is resolved again rather than declared expired.
    await env.db.comparison.update({ where: { id }, data: { resolvedExpiresAt: new Date(Date.now() - 1000) } });
    const getArtifact = new RegExp(`/task/${task.taskId}/runs/0/artifacts/public%2Fcompare-locales%2Fcompares%2Fbrowser.de.json$`);
    const asked = standIn.count(getArtifact);
    expect((await get(`/artifacts/${id}`)).status).toBe(302);
    expect(standIn.count(getArtifact)).toBe(asked + 1);
  });
});
