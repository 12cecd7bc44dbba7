/**
 * The GitHub webhook receiver (`pulse-bridge webhook`, and part of `start`
 * when GITHUB_WEBHOOK_SECRET is set): a small node:http server of its own on
 * WEBHOOK_HOST:WEBHOOK_PORT, because it must be reachable from GitHub while
 * the dashboard need not be. It serves
 *   POST /github   GitHub's push (and ping) deliveries
 *   GET  /healthz  the process is up
 *   GET  /metrics  Prometheus (forward only /github from the internet)
 *
 * One delivery, in this order, answering as soon as it is decided:
 *   1. size: Content-Length or the bytes read above WEBHOOK_MAX_BYTES → 413,
 *      reading stops;
 *   2. signature: X-Hub-Signature-256 over the raw bytes, constant time → 401
 *      (missing or wrong), before anything is decoded or parsed;
 *   3. event: ping → 200; anything but push → 200, ignored;
 *   4. parse: strict UTF-8, JSON, the push fields the Pulse path checks,
 *      X-GitHub-Delivery present → else 400;
 *   5. tracked: the repository must be a tracked git repository → else 200,
 *      counted as untracked, nothing enqueued or cloned;
 *   6. enqueue: the same job the Pulse path builds (routing's webhookPushJob,
 *      event id = X-GitHub-Delivery, so a redelivery or the same push seen on
 *      Pulse is one job) → 202, 200 if that job was there already, 503 if Redis
 *      (or PostgreSQL, in 5) does not answer within ENQUEUE_TIMEOUT_MS:
 *      never a 2xx for a push that was not kept.
 * The sync itself happens later, in an hg-sync worker.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { OriginalMessage } from "../contract/contracts.ts";
import { WEBHOOK_CONNECTION } from "../contract/push-source.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../contract/queues.ts";
import type { Config } from "../core/config.ts";
import { type ListeningServer, listen } from "../core/http-server.ts";
import type { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";
import { registry, webhookDeliveries, webhookDuration } from "../core/metrics.ts";
import { createRedis } from "../core/redis.ts";
import { durableHandOff } from "../core/redis-durability.ts";
import { webhookPushJob } from "../routing/route-message.ts";
import { WEBHOOK_OUTCOMES, type WebhookOutcome } from "./outcomes.ts";
import { checkSignature, SIGNATURE_HEADER } from "./signature.ts";

export const WEBHOOK_PATH = "/github";
/** GitHub gives up on a delivery after 10 s; we answer 503 well before. */
export const ENQUEUE_TIMEOUT_MS = 5_000;

/** GitHub's headers kept with the job (never the signature). */
const KEPT_HEADERS = [
  "x-github-event",
  "x-github-delivery",
  "x-github-hook-id",
  "x-github-hook-installation-target-type",
  "x-github-hook-installation-target-id",
  "user-agent",
];

export interface WebhookReceiverOptions {
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
  /**
   * Whether `repoUrl` is a tracked (not archived) git repository. The answer
   * lives in the database, which this layer does not open: the composition
   * (src/cli, src/start) hands in the hg-sync worker's own lookup.
   */
  isTracked(repoUrl: string): Promise<boolean>;
}

/** Its url is e.g. http://127.0.0.1:3001 (the real port when WEBHOOK_PORT=0). */
export type WebhookHandle = ListeningServer;

interface Answer {
  outcome: WebhookOutcome;
  detail?: string;
}

class TooLarge extends Error {}

/**
 * The body, or TooLarge as soon as it passes `max` bytes. What follows is
 * read and thrown away (bounded by the server's requestTimeout), so that the
 * sender, still writing, gets the 413 instead of a reset connection.
 */
function readBody(request: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"]);
    if (Number.isFinite(declared) && declared > max) {
      request.resume();
      return reject(new TooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        request.off("data", onData);
        chunks.length = 0;
        request.resume();
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    };
    request.on("data", onData);
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" ? value : undefined;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export async function startWebhookReceiver(options: WebhookReceiverOptions): Promise<WebhookHandle> {
  const { config, lifecycle } = options;
  const log = options.log.child({ component: "webhook" });
  const secret = config.webhook.secret;
  if (!secret) throw new Error("GITHUB_WEBHOOK_SECRET is not set: the webhook receiver needs the secret configured on GitHub");

  const redis = createRedis(config.redis, "producer");
  redis.on("error", (error) => log.debug({ err: error.message }, "redis connection error"));
  // A 2xx tells GitHub the delivery is kept: only once Redis has it as REDIS_DURABILITY means it.
  const afterAdd = await durableHandOff(redis, config.redis, config.redis.durability, log);
  const queues: Queues = openQueues(redis, config.redis.prefix);
  for (const queue of Object.values(queues)) queue.on("error", (error) => log.debug({ err: error.message }, "queue error"));

  /** Steps 3 to 6 of the file comment; the signature has been checked. */
  async function handleSigned(request: IncomingMessage, body: Buffer): Promise<Answer> {
    const event = header(request, "x-github-event") ?? "";
    if (event === "ping") return { outcome: "ping", detail: "pong" };
    if (event !== "push") return { outcome: "ignored-event", detail: `only push events are handled, not ${JSON.stringify(event.slice(0, 50))}` };
    const delivery = header(request, "x-github-delivery") ?? "";
    if (!/^[A-Za-z0-9-]{1,100}$/.test(delivery)) return { outcome: "malformed", detail: "X-GitHub-Delivery is missing or not a delivery id" };
    const contentType = (header(request, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (contentType !== "application/json")
      return { outcome: "malformed", detail: "content type must be application/json (the webhook's 'Content type' setting on GitHub)" };
    let text: string;
    let parsed: unknown;
    try {
      text = utf8.decode(body);
      parsed = JSON.parse(text);
    } catch {
      return { outcome: "malformed", detail: "body is not UTF-8 JSON" };
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { outcome: "malformed", detail: "body is not a JSON object" };
    const fullName = (parsed as { repository?: { full_name?: unknown } }).repository?.full_name;
    const original: OriginalMessage = {
      connection: WEBHOOK_CONNECTION,
      feed: "github",
      exchange: WEBHOOK_PATH,
      routingKey: `${typeof fullName === "string" ? fullName.slice(0, 200) : "?"}/push`,
      body: text,
      bodyEncoding: "utf8",
      headers: Object.fromEntries(KEPT_HEADERS.flatMap((name) => (header(request, name) === undefined ? [] : [[name, header(request, name)!.slice(0, 200)]]))),
      redelivered: false,
      receivedAt: new Date().toISOString(),
    };
    const built = webhookPushJob(parsed, delivery, original, config.github.url);
    if ("invalid" in built) return { outcome: "malformed", detail: built.invalid };
    const { job } = built;
    const repoUrl = job.data.repoUrl;
    try {
      if (!(await withTimeout(options.isTracked(repoUrl), ENQUEUE_TIMEOUT_MS, "the database"))) {
        return { outcome: "untracked", detail: `${repoUrl} is not a tracked git repository: nothing synced` };
      }
      const queue = queues["hg-sync"];
      const enqueue = async () => {
        // BullMQ ignores an add whose id it holds; asking first tells a
        // duplicate apart (a race between two copies only changes the label).
        if (await queue.getJob(job.opts.jobId)) return "duplicate" as const;
        await addJob(queues, job);
        await afterAdd?.();
        return "accepted" as const;
      };
      const outcome = await withTimeout(enqueue(), ENQUEUE_TIMEOUT_MS, "Redis");
      return { outcome, detail: job.opts.jobId };
    } catch (error) {
      log.warn({ err: (error as Error).message, delivery }, "webhook push not kept: answering 503");
      return { outcome: "unavailable", detail: "not kept, try again: the job store did not answer" };
    }
  }

  async function handleDelivery(request: IncomingMessage): Promise<Answer> {
    let body: Buffer;
    try {
      body = await readBody(request, config.webhook.maxBodyBytes);
    } catch (error) {
      if (error instanceof TooLarge) return { outcome: "too-large", detail: `body above ${config.webhook.maxBodyBytes} bytes` };
      throw error;
    }
    const signature = checkSignature(secret!, body, request.headers[SIGNATURE_HEADER]);
    if (signature === "missing") return { outcome: "unsigned", detail: "X-Hub-Signature-256 is missing (set the webhook's secret on GitHub)" };
    if (signature === "bad") return { outcome: "bad-signature", detail: "X-Hub-Signature-256 does not match the body" };
    return handleSigned(request, body);
  }

  const send = (response: ServerResponse, status: number, body: string, contentType = "application/json") => {
    response.writeHead(status, {
      "Content-Type": contentType,
      "Content-Length": Buffer.byteLength(body),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    });
    response.end(body);
  };

  const server = http.createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === WEBHOOK_PATH && request.method === "POST") {
      const started = process.hrtime.bigint();
      handleDelivery(request)
        .then((answer) => {
          const status = WEBHOOK_OUTCOMES[answer.outcome];
          webhookDeliveries.inc({ outcome: answer.outcome });
          webhookDuration.observe({ outcome: answer.outcome }, Number(process.hrtime.bigint() - started) / 1e9);
          // Unauthenticated refusals are the internet's noise: counted, logged at debug only.
          const level =
            answer.outcome === "unsigned" || answer.outcome === "bad-signature" || answer.outcome === "too-large" || answer.outcome === "unavailable"
              ? "debug"
              : "info";
          log[level](
            { outcome: answer.outcome, status, delivery: header(request, "x-github-delivery")?.slice(0, 100), detail: answer.detail },
            "webhook delivery",
          );
          send(response, status, JSON.stringify({ outcome: answer.outcome, ...(answer.detail ? { detail: answer.detail } : {}) }));
        })
        .catch((error: Error) => {
          log.error({ err: error.message }, "webhook delivery failed");
          if (!response.headersSent) send(response, 500, JSON.stringify({ error: "internal error" }));
        });
      return;
    }
    if (path === "/healthz" && request.method === "GET") return send(response, 200, JSON.stringify({ status: "ok" }));
    if (path === "/metrics" && request.method === "GET") {
      registry
        .metrics()
        .then((text) => send(response, 200, text, registry.contentType))
        .catch(() => send(response, 500, "metrics failed\n", "text/plain"));
      return;
    }
    send(response, path === WEBHOOK_PATH ? 405 : 404, JSON.stringify({ error: path === WEBHOOK_PATH ? "POST only" : "not found" }));
  });
  // Slow senders cannot hold connections open for long.
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;

  const releaseConnections = async () => {
    await closeQueues(queues).catch(() => {});
    await redis.quit().catch(() => redis.disconnect());
  };
  const listening = await listen(server, {
    role: "webhook receiver",
    host: config.webhook.host,
    port: config.webhook.port,
    log,
    lifecycle,
    release: releaseConnections,
  });
  log.info({ url: `${listening.url}${WEBHOOK_PATH}` }, "webhook receiver listening");
  return listening;
}
