/**
 * From one Pulse delivery to what the bridge does with it (PRODUCT §5): a job
 * to enqueue, a reason to ignore it, or a dead letter. Pure apart from the
 * clock (receivedAt), and looks nothing up: whether a repository is tracked is
 * the hg-sync worker's decision, which keeps the bridge thin and fast. Replay
 * of dead letters calls it too, so a fixed message takes the normal path.
 */
import type { z } from "zod";
import type { Config, PulseFeed } from "../config.ts";
import type { AnyJobRequest, GitPushJob, JobRequest, OriginalMessage } from "../jobs/contracts.ts";
import { deadLetterJobRequest, hgSyncJobRequest, tcIngestJobRequest } from "../jobs/job-requests.ts";
import {
  changegroupData,
  githubPushBody,
  githubWebhookEnvelope,
  hgPayload,
  newrepoData,
  taskclusterGithubPush,
  taskRunMessage,
} from "./message-schemas.ts";

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

export type RouteDecision =
  | { action: "enqueue"; job: AnyJobRequest }
  | { action: "ignore"; reason: string }
  | { action: "dead-letter"; job: JobRequest<"dead-letter"> };

/** Bodies above this are not parsed (Pulse messages are a few KiB; the largest, obsolete.1, tens). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** A dead letter keeps at most this much of a body, so one absurd message cannot fill Redis. */
export const MAX_KEPT_BODY_BYTES = 4 * 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A reason for refusing a message; carried to the dead letter. */
class Invalid extends Error {}

export function routeMessage(message: IncomingMessage, config: Config): RouteDecision {
  // Decoded once: the text is both kept in the job and parsed.
  const text = decodeUtf8(message.content.length > MAX_KEPT_BODY_BYTES ? message.content.subarray(0, MAX_KEPT_BODY_BYTES) : message.content);
  const original = originalMessage(message, text);
  try {
    const body = parseBody(message.content, text);
    switch (message.feed.kind) {
      case "hgpushes":
        return routeHgPush(message, body, original);
      case "github":
        return routeGithub(message, body, original, config);
      case "taskcluster":
        return routeTaskRun(message, body, original, config);
    }
  } catch (error) {
    if (!(error instanceof Invalid)) throw error;
    return deadLetter(original, error.message, message.content.length);
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
 * base64 (at most MAX_KEPT_BODY_BYTES of it). `text` is the body already
 * decoded, if the caller has it.
 */
export function originalMessage(message: IncomingMessage, text?: string): OriginalMessage {
  const kept = message.content.length > MAX_KEPT_BODY_BYTES ? message.content.subarray(0, MAX_KEPT_BODY_BYTES) : message.content;
  const decoded = text ?? decodeUtf8(kept);
  return {
    connection: message.feed.connection,
    feed: message.feed.kind,
    exchange: message.exchange,
    routingKey: message.routingKey,
    body: decoded ?? kept.toString("base64"),
    bodyEncoding: decoded === undefined ? "base64" : "utf8",
    headers: message.headers,
    redelivered: message.redelivered,
    receivedAt: (message.receivedAt ?? new Date()).toISOString(),
  };
}

function deadLetter(message: OriginalMessage, reason: string, size: number): RouteDecision {
  const truncated = size > MAX_KEPT_BODY_BYTES ? ` (body truncated to its first ${MAX_KEPT_BODY_BYTES} of ${size} bytes)` : "";
  return { action: "dead-letter", job: deadLetterJobRequest({ kind: "dead-letter", reason: reason + truncated, message }) };
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
    const where = [path, ...issue.path.map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`))]
      .join("")
      .replace(/^\./, "");
    return `${where || "(body)"}: ${issue.message}`;
  });
  throw new Invalid(`invalid ${what}: ${issues.join("; ")}`);
}

// ---- hgpushes -------------------------------------------------------------

function routeHgPush(message: IncomingMessage, body: Record<string, unknown>, original: OriginalMessage): RouteDecision {
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
      return {
        action: "enqueue",
        job: hgSyncJobRequest({
          kind: "hg-push",
          repoUrl: data.repo_url.replace(/\/+$/, ""),
          heads: data.heads,
          pushIds: data.pushlog_pushes.map((push) => push.pushid),
          message: original,
        }),
      };
    }
    case "newrepo.1": {
      const data = check(newrepoData, payload.data, dataPath, "newrepo.1 message");
      return { action: "enqueue", job: hgSyncJobRequest({ kind: "hg-newrepo", repoUrl: data.repo_url.replace(/\/+$/, ""), message: original }) };
    }
    case "obsolete.1":
      // Our models have no obsolescence markers (PRODUCT §5).
      return { action: "ignore", reason: "hgpushes obsolete.1" };
    default:
      // vcsreplicator: "consumers should ignore unknown message types".
      return { action: "ignore", reason: `hgpushes type ${payload.type.slice(0, 50)} not handled` };
  }
}

// ---- GitHub ---------------------------------------------------------------

function routeGithub(message: IncomingMessage, body: Record<string, unknown>, original: OriginalMessage, config: Config): RouteDecision {
  const { exchanges } = config.pulse;
  if (message.exchange === exchanges.githubWebhooks) {
    // Routing key <owner>/<repo>/<event>; the body says the event too.
    const envelope = check(githubWebhookEnvelope, body, "", "github-webhooks message");
    if (envelope.event !== "push") return { action: "ignore", reason: `github event ${envelope.event.slice(0, 50)} not handled` };
    const push = check(githubPushBody, envelope.payload, "payload", "GitHub push");
    return { action: "enqueue", job: hgSyncJobRequest(gitPushJob(push, envelope.request_id, original)) };
  }
  if (message.exchange === exchanges.taskclusterGithubPush) {
    const event = check(taskclusterGithubPush, body, "", "taskcluster-github push message");
    const push = check(githubPushBody, event.body, "body", "GitHub push");
    return { action: "enqueue", job: hgSyncJobRequest(gitPushJob(push, event.eventId, original)) };
  }
  throw new Invalid(`exchange ${message.exchange} is not one the github feed is bound to`);
}

function gitPushJob(push: z.output<typeof githubPushBody>, eventId: string, original: OriginalMessage): GitPushJob {
  return {
    kind: "git-push",
    repoUrl: `https://github.com/${push.repository.full_name}`,
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
  const runState = run.status.runs?.find((r) => r.runId === run.runId)?.state;
  return {
    action: "enqueue",
    job: tcIngestJobRequest({
      kind: "tc-run",
      rootUrl: message.feed.rootUrl,
      taskId: run.status.taskId,
      runId: run.runId,
      state: runState ?? run.status.state ?? exchangeState,
      taskGroupId: run.status.taskGroupId,
      message: original,
    }),
  };
}
