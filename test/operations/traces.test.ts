/**
 * Traces (README, "Traces"): a real `node dist/cli.js bridge` process and
 * in-process hg-sync and tc-ingest pools, both with OTEL_EXPORTER_OTLP_ENDPOINT
 * pointing at a local OTLP/HTTP receiver (a real HTTP server taking the
 * exporter's JSON on /v1/traces). One hg push and one task-completed message,
 * published on the broker, must each come back as one connected trace: the
 * bridge's consume span is its root, and the worker's job span (another
 * process: the context crossed Redis inside the job), its external calls
 * (hg, pushlog, Queue API, HTTP) and its database transaction all descend from
 * it, with the routing key and the job id as attributes.
 */
import http from "node:http";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { startTracing, type TracingHandle } from "../../src/core/tracing.ts";
import { hgSyncPool } from "../../src/jobs/hg-sync/pool.ts";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { startPool } from "../../src/jobs/start-pool.ts";
import { tcIngestPool } from "../../src/jobs/tc-ingest/pool.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { assertCliBuilt, type BridgeProcess, spawnBridgeProcess } from "../support/bridge-process.ts";
import { formatJson } from "../support/formats.ts";
import { declareExchanges, openPublisher, type Publisher, taskCompletedMessage } from "../support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, standInTask } from "../tc-ingest/fixtures.ts";

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  attributes: Record<string, unknown>;
  /** The `pulse_bridge.role` of the process that sent it. */
  role: unknown;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
type OtlpAttributes = Array<{ key: string; value: OtlpValue }> | undefined;

/** OTLP/JSON ids are hex; protobuf-JSON mappings use base64: accept both. */
function hexId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex");
}

function attributes(list: OtlpAttributes): Record<string, unknown> {
  return Object.fromEntries(
    (list ?? []).map(({ key, value }) => [
      key,
      value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue)),
    ]),
  );
}

/** An OTLP/HTTP receiver for traces, JSON encoding (what @opentelemetry/exporter-trace-otlp-http sends). */
async function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers["content-type"]));
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      const request = JSON.parse(body.toString("utf8")) as {
        resourceSpans?: Array<{
          resource?: { attributes?: OtlpAttributes };
          scopeSpans?: Array<{ spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: OtlpAttributes }> }>;
        }>;
      };
      for (const resourceSpans of request.resourceSpans ?? []) {
        const role = attributes(resourceSpans.resource?.attributes)["pulse_bridge.role"];
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              traceId: hexId(span.traceId)!,
              spanId: hexId(span.spanId)!,
              parentSpanId: hexId(span.parentSpanId),
              name: span.name,
              attributes: attributes(span.attributes),
              role,
            });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let env: TestEnvironment;
let hg: HgServer;
let standIn: QueueApiStandIn;
let publisher: Publisher;
let bridge: BridgeProcess | undefined;
let tracing: TracingHandle | undefined;
const workers = new Lifecycle(createLogger("silent", "test-workers"));

beforeAll(async () => {
  assertCliBuilt();
  receiver = await startOtlpReceiver();
  standIn = await startQueueApiStandIn();
  hg = await startHgServer();
  env = await createTestEnvironment("traces", { TASKCLUSTER_ROOT_URL: standIn.rootUrl, RECONCILE_INTERVAL: "1h" });
  const log = createLogger(env.config.logLevel, "test-workers");
  tracing = await startTracing({ endpoint: receiver.endpoint, role: "test workers", log });
  await startPool(hgSyncPool, { config: env.config, log, lifecycle: workers, concurrency: 2 });
  await startPool(tcIngestPool, { config: env.config, log, lifecycle: workers, concurrency: 2 });
  publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
  bridge = spawnBridgeProcess({ ...env.env, LOG_LEVEL: "info", OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
  await waitFor("the bridge to consume its three queues", () => (bridge!.logs().match(/consuming from Pulse/g)?.length ?? 0) >= 3, { timeoutMs: 30_000 });
});

afterAll(async () => {
  bridge?.child.kill("SIGKILL");
  await workers.shutdown("test done");
  await tracing?.close();
  await publisher?.close();
  await hg?.close();
  await standIn?.close();
  await receiver?.close();
  await env?.cleanup();
});

/** The spans of one trace, and the chain of parents from `span` up to the trace's root. */
function ancestry(span: ReceivedSpan): ReceivedSpan[] {
  const byId = new Map(receiver.spans.filter((s) => s.traceId === span.traceId).map((s) => [s.spanId, s]));
  const chain = [span];
  for (let parent = span.parentSpanId && byId.get(span.parentSpanId); parent; parent = parent.parentSpanId && byId.get(parent.parentSpanId)) chain.push(parent);
  return chain;
}

/** Checks the trace of the message with `routingKey` and returns its spans. */
function traceOf(routingKey: string, queue: "hg-sync" | "tc-ingest"): ReceivedSpan[] {
  const consumed = receiver.spans.filter((s) => s.name.startsWith("consume ") && s.attributes["messaging.rabbitmq.destination.routing_key"] === routingKey);
  expect(consumed, `consume spans of ${routingKey}`).toHaveLength(1);
  const consume = consumed[0]!;
  // The bridge process's span, the root of the trace, naming the job it enqueued.
  expect(consume.role).toBe("bridge");
  expect(consume.parentSpanId).toBeUndefined();
  const jobId = consume.attributes["bullmq.job.id"];
  expect(jobId).toMatch(queue === "hg-sync" ? /^hg-push\|/ : /^tc\|/);
  expect(consume.attributes["pulse_bridge.outcome"]).toBe("enqueued");

  const trace = receiver.spans.filter((s) => s.traceId === consume.traceId);
  // One connected trace: every span's parent is in it, up to the consume span.
  for (const span of trace) expect(ancestry(span).at(-1), `${span.name} descends from the consume span`).toBe(consume);

  const jobSpans = trace.filter((s) => s.name === `job ${queue}`);
  expect(jobSpans.length).toBeGreaterThanOrEqual(1);
  for (const job of jobSpans) {
    // Carried out by the workers' process: the context crossed Redis in the job.
    expect(job.role).toBe("test workers");
    expect(job.attributes["bullmq.job.id"]).toBe(jobId);
    expect(job.attributes["messaging.rabbitmq.destination.routing_key"]).toBe(routingKey);
    // BullMQ's producer span (bullmq-otel) sits between the delivery and the job.
    expect(ancestry(job).map((s) => s.name)).toContain(`add ${queue}.${queue === "hg-sync" ? "hg-push" : "tc-run"}`);
  }
  return trace;
}

/** Whether `span` runs under one of the trace's job spans. */
const underJob = (span: ReceivedSpan, queue: string) => ancestry(span).some((s) => s.name === `job ${queue}`);

describe("traces", () => {
  it("follow an hg push and a task-completed message from the bridge's delivery to the database, one trace each", async () => {
    // The scheduler's first reconcile (no repositories yet) is out of the way before the repository exists.
    const { Queue } = await import("bullmq");
    const hgQueue = new Queue("hg-sync", { connection: { url: env.config.redis.url }, prefix: env.config.redis.prefix });
    try {
      await waitFor("the first reconcile to finish", async () => {
        const counts = await hgQueue.getJobCounts("active", "waiting", "prioritized");
        return !counts.active && !counts.waiting && !counts.prioritized;
      });
    } finally {
      await hgQueue.close();
    }

    // An hg push, announced as hg.mozilla.org does (changegroup.1).
    const repo = "traces/de";
    const repoUrl = await hg.createRepo(repo);
    await trackRepository(env.db, env.config.clones.allowedHosts, repoUrl, { locale: "de" });
    const { pushId, nodes } = await hg.push(repo, [{ message: "first", files: { "a.ftl": "a = A\n" } }]);
    const envelope = formatJson("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json");
    const push = envelope.payload.data.pushlog_pushes[0];
    envelope.payload.data = {
      ...envelope.payload.data,
      repo_url: repoUrl,
      heads: [nodes.at(-1)],
      pushlog_pushes: [{ ...push, pushid: pushId, push_json_url: `${repoUrl}/json-pushes?version=2&startID=${pushId - 1}&endID=${pushId}` }],
    };
    envelope._meta = { ...envelope._meta, exchange: env.config.pulse.exchanges.hgpushes, routing_key: repo };
    await publisher.publish(env.config.pulse.exchanges.hgpushes, repo, envelope);

    // A compare-locales run, completed.
    const task = taskCompletedMessage(1, env.config);
    standIn.addTask(
      standInTask({ taskId: task.taskId, artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) }),
    );
    await publisher.publish(task.exchange, task.routingKey, task.body, task.options);

    await waitFor("the push and the build to be stored", async () => (await env.db.push.count()) === 1 && (await env.db.build.count()) === 1, {
      timeoutMs: 60_000,
    });
    // A job's span ends once its job returns, a moment after the commit: the workers export theirs now...
    await waitFor("both job spans", async () => {
      await tracing!.flush();
      const ended = receiver.spans.filter((s) => s.name.startsWith("job ")).map((s) => s.attributes["messaging.rabbitmq.destination.routing_key"]);
      return ended.includes(repo) && ended.includes(task.routingKey);
    });
    // ...and the bridge on its way out (SIGTERM flushes).
    bridge!.child.kill("SIGTERM");
    expect(await bridge!.exited, bridge!.logs()).toBe(0);
    await waitFor("the spans of both processes", () => new Set(receiver.spans.map((s) => s.role)).size === 2 || undefined);
    expect([...receiver.contentTypes]).toEqual(["application/json"]);

    const hgTrace = traceOf(repo, "hg-sync");
    const hgCalls = hgTrace.filter((s) => underJob(s, "hg-sync"));
    // hg itself (clone or pull, then the history reads), the pushlog over HTTP, and the transaction storing the push.
    expect(hgCalls.some((s) => s.attributes["process.executable.name"] === "hg")).toBe(true);
    expect(hgCalls.some((s) => s.name === "pushlog page" && s.attributes["pulse_bridge.repository"] === repoUrl)).toBe(true);
    expect(hgCalls.some((s) => s.name === "GET" && s.attributes["http.response.status_code"] === 200)).toBe(true);
    expect(hgCalls.map((s) => s.name)).toContain("db transaction store pushes");

    const tcTrace = traceOf(task.routingKey, "tc-ingest");
    const tcCalls = tcTrace.filter((s) => underJob(s, "tc-ingest"));
    expect(tcCalls.map((s) => s.name)).toEqual(expect.arrayContaining(["Queue API task", "Queue API listArtifacts", "Queue API getArtifact", "GET"]));
    expect(tcCalls.filter((s) => s.name.startsWith("Queue API")).every((s) => s.attributes["taskcluster.task_id"] === task.taskId)).toBe(true);
    expect(tcCalls.map((s) => s.name)).toContain("db transaction store build");

    // Two traces, not one: each message has its own.
    expect(hgTrace[0]!.traceId).not.toBe(tcTrace[0]!.traceId);
    console.log(
      `traces: hg push ${hgTrace.length} spans (${[...new Set(hgTrace.map((s) => s.name))].join(", ")}); task-completed ${tcTrace.length} spans (${[...new Set(tcTrace.map((s) => s.name))].join(", ")})`,
    );
  });
});
