/**
 * From one Pulse delivery to what the bridge does with it: a job
 * to enqueue, a reason to ignore it, or a dead letter. Pure apart from the
 * clock (receivedAt), and looks nothing up: whether a repository is tracked is
 * the hg-sync worker's decision, which keeps the bridge thin and fast. Replay
 * of dead letters calls it too, so a fixed message takes the normal path.
 */
import { createHash } from "node:crypto";
import type { z } from "zod";
import type { AnyJobRequest, GitPushJob, JobRequest, OriginalMessage } from "../contract/contracts.ts";
import { deadLetterJobRequest, hgSyncJobRequest, MAX_DEAD_LETTER_BODY_BYTES, tcIngestJobRequest } from "../contract/job-requests.ts";
import type { Config, PulseFeed } from "../core/config.ts";
import { hasUrlCredentials } from "../core/redact.ts";
import { trimTrailingSlashes } from "../core/urls.ts";
import { changegroupData, githubPushBody, githubWebhookEnvelope, hgPayload, newrepoData, taskclusterGithubPush, taskRunMessage } from "./message-schemas.ts";

export interface IncomingMessage {
  feed: PulseFeed;
  exchange: string;
  routingKey: string;
  content: Buffer;
  headers: Record<string, unknown>;
  redelivered: boolean;
  /** When the bridge received it (defaults to now). */
  receivedAt?: Date;
}

/**
 * Why a well-formed message is ignored, as a fixed set: the metrics label
 * (messages_ignored_total{reason}) takes only these, never the sender's text,
 * so senders cannot add time series; the free text goes to `reason` (logs).
 */
export const IGNORE_CATEGORIES = ["hg-obsolete", "hg-unknown-type", "github-other-event"] as const;
export type IgnoreCategory = (typeof IGNORE_CATEGORIES)[number];

export type RouteDecision =
  | { action: "enqueue"; job: AnyJobRequest }
  | { action: "ignore"; category: IgnoreCategory; reason: string }
  | { action: "dead-letter"; job: JobRequest<"dead-letter"> };

/** Bodies above this are not parsed (Pulse messages are a few KiB; the largest, obsolete.1, tens). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** A dead letter keeps at most this much of a body, so large messages cannot fill Redis (job-requests.ts). */
export const MAX_KEPT_BODY_BYTES = MAX_DEAD_LETTER_BODY_BYTES;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A reason for refusing a message; carried to the dead letter. */
class Invalid extends Error {}

export function routeMessage(message: IncomingMessage, config: Config): RouteDecision {
  // Decoded once: the text is both kept in the job and parsed. A body too
  // large to parse is not decoded at all (only its kept prefix, if it dies).
  const text = message.content.length > MAX_BODY_BYTES ? undefined : decodeUtf8(message.content);
  try {
    const body = parseBody(message.content, text);
    const original = originalMessage(message, text);
    switch (message.feed.kind) {
      case "hgpushes":
        return routeHgPush(body, original);
      case "github":
        return routeGithub(message, body, original, config);
      case "taskcluster":
        return routeTaskRun(message, body, original, config);
    }
  } catch (error) {
    if (!(error instanceof Invalid)) throw error;
    return {
      action: "dead-letter",
      job: deadLetterJobRequest({ kind: "dead-letter", reason: error.message, message: originalMessage(message, text, MAX_KEPT_BODY_BYTES) }),
    };
  }
}

function decodeUtf8(content: Buffer): string | undefined {
  try {
    return utf8.decode(content);
  } catch {
    return undefined;
  }
}

/**
 * The delivery as kept in every job: body as UTF-8 text when it is, else
 * base64, at most `keep` bytes of it (jobs: the whole parsed body; dead
 * letters: a prefix cut on a character boundary, with the full size and
 * sha256 in `truncated`). `text` is the body already decoded, if the caller
 * has it.
 */
export function originalMessage(message: IncomingMessage, text?: string, keep = MAX_BODY_BYTES): OriginalMessage {
  const { content } = message;
  const cut = content.length > keep;
  let kept = content;
  let decoded = cut ? undefined : (text ?? decodeUtf8(content));
  if (cut) {
    // A UTF-8 character is at most 4 bytes: step back over at most 3 continuation bytes.
    let end = keep;
    while (end > keep - 3 && (content[end]! & 0xc0) === 0x80) end--;
    decoded = decodeUtf8(content.subarray(0, end));
    kept = decoded === undefined ? content.subarray(0, keep) : content.subarray(0, end);
  }
  const original: OriginalMessage = {
    connection: message.feed.connection,
    feed: message.feed.kind,
    exchange: message.exchange,
    routingKey: message.routingKey,
    body: decoded ?? kept.toString("base64"),
    bodyEncoding: decoded === undefined ? "base64" : "utf8",
    headers: message.headers,
    redelivered: message.redelivered,
    receivedAt: message.receivedAt ? message.receivedAt.toISOString() : nowIso(),
  };
  if (cut) original.truncated = { bytes: content.length, sha256: createHash("sha256").update(content).digest("hex") };
  return original;
}

let clockMs = Number.NaN;
let clockIso = "";

/**
 * Now, as ISO text. The text has millisecond precision and the bridge routes
 * tens of messages per millisecond, so it is made once per millisecond
 * (formatting a Date cost ~0.45 µs, a tenth of routing a message).
 */
function nowIso(): string {
  const now = Date.now();
  if (now !== clockMs) {
    clockMs = now;
    clockIso = new Date(now).toISOString();
  }
  return clockIso;
}

/**
 * Repository URLs with a user part are refused before any job id is built:
 * ids, lock names, logs and Redis keys are made from the URL, and a message
 * from a hostile sender must not plant its credentials (or someone else's)
 * there. The reason names the field, never the URL.
 */
function refuseCredentials(value: unknown, where: string): void {
  if (typeof value !== "string") return;
  let userinfo = false;
  try {
    const parsed = new URL(value);
    userinfo = parsed.username !== "" || parsed.password !== "";
  } catch {
    // Not a URL: the pattern below still catches scheme://user@.
  }
  if (userinfo || hasUrlCredentials(value)) throw new Invalid(`${where}: must not carry credentials (a user or password in the URL)`);
}

function parseBody(content: Buffer, text: string | undefined): Record<string, unknown> {
  if (content.length > MAX_BODY_BYTES) throw new Invalid(`body of ${content.length} bytes exceeds the ${MAX_BODY_BYTES}-byte limit`);
  if (text === undefined) throw new Invalid("body is not valid UTF-8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Invalid(`body is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw new Invalid(`body is JSON ${describe(value)}, not an object`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  return typeof value;
}

/** Parses or throws Invalid naming each failing field by its path in the body. */
function check<S extends z.ZodType>(schema: S, value: unknown, path: string, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((issue) => {
    const where = [path, ...issue.path.map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`))].join("").replace(/^\./, "");
    return `${where || "(body)"}: ${issue.message}`;
  });
  throw new Invalid(`invalid ${what}: ${issues.join("; ")}`);
}

// ---- hgpushes -------------------------------------------------------------

function routeHgPush(body: Record<string, unknown>, original: OriginalMessage): RouteDecision {
  // v2 messages come as {payload: {type, data}, _meta}; accept a bare {type, data} too.
  const enveloped = isObject(body.payload) && "type" in body.payload;
  if (!enveloped && !("type" in body)) {
    throw new Invalid("body is neither a {payload: {type, data}, _meta} envelope nor a bare {type, data} payload");
  }
  const prefix = enveloped ? "payload" : "";
  const payload = check(hgPayload, enveloped ? body.payload : body, prefix, "hgpushes message");
  const dataPath = `${prefix}.data`;
  switch (payload.type) {
    case "changegroup.1": {
      const data = check(changegroupData, payload.data, dataPath, "changegroup.1 message");
      refuseCredentials(data.repo_url, `${dataPath}.repo_url`);
      return {
        action: "enqueue",
        job: hgSyncJobRequest({
          kind: "hg-push",
          repoUrl: trimTrailingSlashes(data.repo_url),
          heads: data.heads,
          pushIds: data.pushlog_pushes.map((push) => push.pushid),
          message: original,
        }),
      };
    }
    case "newrepo.1": {
      const data = check(newrepoData, payload.data, dataPath, "newrepo.1 message");
      refuseCredentials(data.repo_url, `${dataPath}.repo_url`);
      return { action: "enqueue", job: hgSyncJobRequest({ kind: "hg-newrepo", repoUrl: trimTrailingSlashes(data.repo_url), message: original }) };
    }
    case "obsolete.1":
      // Our data model has no obsolescence markers (prisma/schema.prisma).
      return { action: "ignore", category: "hg-obsolete", reason: "hgpushes obsolete.1" };
    default:
      // vcsreplicator: "consumers should ignore unknown message types".
      return { action: "ignore", category: "hg-unknown-type", reason: `hgpushes type ${payload.type.slice(0, 50)} not handled` };
  }
}

// ---- GitHub ---------------------------------------------------------------

function routeGithub(message: IncomingMessage, body: Record<string, unknown>, original: OriginalMessage, config: Config): RouteDecision {
  const { exchanges } = config.pulse;
  if (message.exchange === exchanges.githubWebhooks) {
    // Routing key <owner>/<repo>/<event>; the body says the event too.
    const envelope = check(githubWebhookEnvelope, body, "", "github-webhooks message");
    if (envelope.event !== "push")
      return { action: "ignore", category: "github-other-event", reason: `github event ${envelope.event.slice(0, 50)} not handled` };
    const push = check(githubPushBody, envelope.payload, "payload", "GitHub push");
    refuseRepositoryCredentials(push, "payload");
    return { action: "enqueue", job: hgSyncJobRequest(gitPushJob(push, envelope.request_id, original, config.github.url)) };
  }
  if (message.exchange === exchanges.taskclusterGithubPush) {
    const event = check(taskclusterGithubPush, body, "", "taskcluster-github push message");
    const push = check(githubPushBody, event.body, "body", "GitHub push");
    refuseRepositoryCredentials(push, "body");
    return { action: "enqueue", job: hgSyncJobRequest(gitPushJob(push, event.eventId, original, config.github.url)) };
  }
  throw new Invalid(`exchange ${message.exchange} is not one the github feed is bound to`);
}

/**
 * A push delivered by our own GitHub webhook receiver (src/webhook), already
 * authenticated and parsed: the same job as through Pulse (the delivery id is
 * the event id both Pulse exchanges carry), or the reason it is malformed.
 * `githubUrl` is GITHUB_URL (https://github.com), as for Pulse.
 */
export function webhookPushJob(
  body: unknown,
  deliveryId: string,
  original: OriginalMessage,
  githubUrl: string,
): { job: JobRequest<"hg-sync"> } | { invalid: string } {
  try {
    const push = check(githubPushBody, body, "", "GitHub push");
    refuseRepositoryCredentials(push, "payload");
    return { job: hgSyncJobRequest(gitPushJob(push, deliveryId, original, githubUrl)) };
  } catch (error) {
    if (error instanceof Invalid) return { invalid: error.message };
    throw error;
  }
}

/** Every URL field of the push's repository (clone_url, html_url, url, git_url, ...). */
function refuseRepositoryCredentials(push: z.output<typeof githubPushBody>, path: string): void {
  for (const [key, value] of Object.entries(push.repository)) {
    if (/url$/i.test(key)) refuseCredentials(value, `${path}.repository.${key}`);
  }
}

function gitPushJob(push: z.output<typeof githubPushBody>, eventId: string, original: OriginalMessage, githubUrl: string): GitPushJob {
  return {
    kind: "git-push",
    repoUrl: `${githubUrl}/${push.repository.full_name}`,
    eventId,
    ref: push.ref,
    before: push.before,
    after: push.after,
    // GitHub lists the pushed commits in order, oldest first; author dates
    // can disagree with that order (rebases), so they are not re-sorted.
    commits: push.commits.map((commit) => commit.id),
    pusher: push.pusher.name,
    pushedAt: pushedAt(push) ?? original.receivedAt,
    message: original,
  };
}

function pushedAt(push: z.output<typeof githubPushBody>): string | undefined {
  const value = push.repository.pushed_at;
  const date = typeof value === "number" ? new Date(value * 1000) : typeof value === "string" ? new Date(value) : undefined;
  if (date && !Number.isNaN(date.getTime())) return date.toISOString();
  const head = push.head_commit?.timestamp ? new Date(push.head_commit.timestamp) : undefined;
  return head && !Number.isNaN(head.getTime()) ? head.toISOString() : undefined;
}

// ---- Taskcluster ----------------------------------------------------------

function routeTaskRun(message: IncomingMessage, body: Record<string, unknown>, original: OriginalMessage, config: Config): RouteDecision {
  const { exchanges } = config.pulse;
  // compare-locales fails its task when a locale has errors yet uploads
  // elmo.json, so task-failed is ingested like task-completed.
  const exchangeState = message.exchange === exchanges.taskCompleted ? "completed" : message.exchange === exchanges.taskFailed ? "failed" : undefined;
  if (!exchangeState) throw new Invalid(`exchange ${message.exchange} is not one the taskcluster feed is bound to`);
  if (!message.feed.rootUrl) throw new Invalid(`feed ${message.feed.queue} has no Taskcluster root URL`);
  const run = check(taskRunMessage, body, "", `${exchangeState === "completed" ? "task-completed" : "task-failed"} message`);
  const announced = run.status.runs?.find((r) => r.runId === run.runId);
  return {
    action: "enqueue",
    job: tcIngestJobRequest({
      kind: "tc-run",
      rootUrl: message.feed.rootUrl,
      taskId: run.status.taskId,
      runId: run.runId,
      state: announced?.state ?? run.status.state ?? exchangeState,
      taskGroupId: run.status.taskGroupId,
      resolved: announced?.state && announced.resolved ? announced.resolved : null,
      message: original,
    }),
  };
}
