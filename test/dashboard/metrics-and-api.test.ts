import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulseFeeds } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { diffBackends } from "../../src/dashboard/extras.ts";
import { type DashboardHandle, startDashboard } from "../../src/dashboard/server.ts";
import { createTestEnvironment, SERVICES, type TestEnvironment } from "../support/test-environment.ts";
import { createTwoRevisionClone } from "../support/two-revision-clone.ts";

let env: TestEnvironment;
let lifecycle: Lifecycle;
let dashboard: DashboardHandle;
let management: Server;
const managementRequests: Array<{ path: string; authorization: string | undefined }> = [];
const REPO_URL = "http://127.0.0.1:1/l10n-central/de";
let revisions: string[] = [];

beforeAll(async () => {
  env = await createTestEnvironment("dashboard-api");
  // A stand-in for the RabbitMQ management API (the plugin is not enabled here).
  management = createServer((request, response) => {
    managementRequests.push({ path: request.url ?? "", authorization: request.headers.authorization });
    response.setHeader("content-type", "application/json");
    if (request.url?.endsWith(encodeURIComponent(pulseFeeds(env.config)[0]!.queue))) {
      response.end(JSON.stringify({ messages_ready: 7, messages_unacknowledged: 5, consumers: 2 }));
    } else {
      response.statusCode = 404;
      response.end(JSON.stringify({ error: "Object Not Found" }));
    }
  });
  await new Promise<void>((resolve) => management.listen(0, "127.0.0.1", resolve));
  const managementPort = (management.address() as AddressInfo).port;

  // Our taskcluster Pulse queue with 3 ready messages.
  const connection = await amqp.connect(SERVICES.amqp);
  const channel = await connection.createChannel();
  const tcQueue = pulseFeeds(env.config).find((feed) => feed.kind === "taskcluster")!.queue;
  await channel.assertQueue(tcQueue, { durable: true, arguments: { "x-max-length": env.config.pulse.maxLength } });
  for (let i = 0; i < 3; i++) channel.sendToQueue(tcQueue, Buffer.from("{}"));
  await channel.close();
  await connection.close();

  // A repository with a push and a real hg clone to diff in.
  revisions = createTwoRevisionClone(env.clonesDir, REPO_URL, "browser.ftl", "hello = Hallo\n", "hello = Hallo Welt\n");
  const locale = await env.db.locale.create({ data: { code: "de" } });
  const repository = await env.db.repository.create({ data: { name: "l10n-central/de", url: REPO_URL, kind: "hg", localeId: locale.id, lastPushId: 1 } });
  const changeset = await env.db.changeset.create({
    data: { revision: revisions[1]!, author: "Test <test@example.org>", description: "second", date: new Date() },
  });
  await env.db.push.create({
    data: {
      repositoryId: repository.id,
      pushId: 1,
      user: "test@example.org",
      pushedAt: new Date(),
      changesets: { create: [{ position: 0, changesetId: changeset.id }] },
    },
  });
  const build = await env.db.build.create({
    data: { rootUrl: "https://tc.example", taskId: "fUAqRKDUTcuyE96IFj1oXw", runId: 0, state: "completed", hasElmoJson: true },
  });
  await env.db.comparison.create({
    data: {
      buildId: build.id,
      localeId: locale.id,
      config: "browser.toml",
      errors: 0,
      warnings: 1,
      missing: 2,
      missingW: 3,
      report: 0,
      obsolete: 0,
      changed: 8,
      changedW: 20,
      unchanged: 0,
      unchangedW: 0,
      keys: 0,
      completion: 80,
      artifactName: "public/compare-locales/compares/browser.de.json",
      artifactUrl: "https://tc.example/api/queue/v1/task/x/runs/0/artifacts/y",
      revisions: { create: [{ repository: REPO_URL, changesetId: changeset.id }] },
    },
  });

  const log = createLogger("silent", "test");
  lifecycle = new Lifecycle(log);
  dashboard = await startDashboard({
    config: env.configWith({ DASHBOARD_PORT: "0", RABBITMQ_MANAGEMENT_URL: `http://monitor:s3cret@127.0.0.1:${managementPort}` }),
    log,
    lifecycle,
    backends: diffBackends(),
  });
});
afterAll(async () => {
  await lifecycle?.shutdown();
  management?.close();
  await env?.cleanup();
});

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${dashboard.url}${path}`);
  return { status: response.status, body: await response.json() };
}

describe("/metrics", () => {
  it("reports BullMQ depths and Pulse queue depths, ready and unacked, from the management API", async () => {
    const text = await (await fetch(`${dashboard.url}/metrics`)).text();
    expect(text).toContain('pulse_bridge_bullmq_jobs{queue="hg-sync",state="waiting"} 0');
    expect(text).toContain('pulse_bridge_bullmq_jobs{queue="dead-letter",state="failed"} 0');
    const hgQueue = pulseFeeds(env.config)[0]!.queue;
    expect(text).toContain(`pulse_bridge_pulse_queue_messages{queue="${hgQueue}",connection="pulse",state="ready"} 7`);
    expect(text).toContain(`pulse_bridge_pulse_queue_messages{queue="${hgQueue}",connection="pulse",state="unacked"} 5`);
    expect(text).toContain(`pulse_bridge_pulse_queue_max_length ${env.config.pulse.maxLength}`);
    expect(text).toContain("pulse_bridge_messages_consumed_total");
    expect(managementRequests[0]!.path).toBe(`/api/queues/%2F/${encodeURIComponent(hgQueue)}`);
    expect(managementRequests[0]!.authorization).toBe(`Basic ${Buffer.from("monitor:s3cret").toString("base64")}`);
  });

  it("reads ready counts over AMQP when no management API is configured", async () => {
    const log = createLogger("silent", "test");
    const own = new Lifecycle(log);
    const plain = await startDashboard({ config: env.configWith({ DASHBOARD_PORT: "0" }), log, lifecycle: own });
    try {
      const text = await (await fetch(`${plain.url}/metrics`)).text();
      const tcQueue = pulseFeeds(env.config).find((feed) => feed.kind === "taskcluster")!.queue;
      expect(text).toContain(`pulse_bridge_pulse_queue_messages{queue="${tcQueue}",connection="pulse",state="ready"} 3`);
      expect(text).toContain(`pulse_bridge_pulse_queue_exists{queue="${tcQueue}",connection="pulse"} 1`);
      expect(text).toContain(`pulse_bridge_pulse_queue_exists{queue="${pulseFeeds(env.config)[0]!.queue}",connection="pulse"} 0`);
    } finally {
      await own.shutdown();
    }
  });
});

describe("JSON API", () => {
  it("lists repositories and their pushes, names with '/' written plain or encoded", async () => {
    const list = await getJson("/api/repositories");
    expect(list.body).toEqual([expect.objectContaining({ name: "l10n-central/de", kind: "hg", locale: "de", lastPushId: 1 })]);
    for (const path of ["/api/repositories/l10n-central/de/pushes?limit=5", "/api/repositories/l10n-central%2Fde/pushes"]) {
      const pushes = await getJson(path);
      expect(pushes.status).toBe(200);
      expect(pushes.body.pushes).toEqual([
        expect.objectContaining({ pushId: 1, changesets: [expect.objectContaining({ revision: revisions[1], description: "second" })] }),
      ]);
    }
    expect((await getJson("/api/repositories/l10n-central/fr/pushes")).status).toBe(404);
    expect((await getJson("/api/repositories/l10n-central/de/pushes?limit=lots")).status).toBe(400);
  });

  it("lists comparisons, filtered by locale", async () => {
    const de = await getJson("/api/comparisons?locale=de&limit=10");
    expect(de.body).toEqual([
      expect.objectContaining({
        locale: "de",
        completion: 80,
        revisions: { [REPO_URL]: revisions[1] },
        artifact: expect.objectContaining({ link: expect.stringMatching(/^\/artifacts\/\d+$/) }),
      }),
    ]);
    expect((await getJson("/api/comparisons?locale=fr")).body).toEqual([]);
    expect((await getJson("/api/comparisons?locale=../../etc")).status).toBe(400);
  });

  it("serves the job history", async () => {
    await env.db.jobRecord.create({
      data: { queue: "tc-ingest", jobId: "tc|x|1", name: "tc-run", state: "failed", attempts: 6, error: "Queue API answered 503" },
    });
    const failed = await getJson("/api/jobs?queue=tc-ingest&state=failed");
    expect(failed.body).toEqual([expect.objectContaining({ jobId: "tc|x|1", attempts: 6, error: "Queue API answered 503" })]);
    expect((await getJson("/api/jobs?queue=nope")).status).toBe(400);
  });

  it("serves bounded diffs from the clone and refuses anything that is not a revision", async () => {
    const diff = await getJson(`/api/repositories/l10n-central/de/diff?from=${revisions[0]}&to=${revisions[1]}`);
    expect(diff.status).toBe(200);
    expect(diff.body.truncated).toBe(false);
    expect(diff.body.diff).toContain("+hello = Hallo Welt");
    for (const bad of ["--config=x", "tip", "0", `${revisions[0]};rm`]) {
      expect((await getJson(`/api/repositories/l10n-central/de/diff?from=${encodeURIComponent(bad)}&to=${revisions[1]}`)).status).toBe(400);
    }
    expect((await getJson(`/api/repositories/l10n-central/de/diff?from=${"a".repeat(40)}&to=${revisions[1]}`)).status).toBe(404);
  });
});
