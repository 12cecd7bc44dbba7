/**
 * Job ids and per-job options for each payload. Ids are deterministic, so a
 * message delivered (or replayed) twice adds no second job: BullMQ ignores an
 * add whose id it already holds.
 */
import { createHash } from "node:crypto";
import { redactText } from "../core/redact.ts";
import { repositoryKey } from "../core/urls.ts";
import {
  DEFAULT_JOB_OPTIONS,
  type DeadLetterJob,
  digest,
  type HgSyncJob,
  type JobRequest,
  type OriginalMessage,
  safeJobIdPart,
  type TcIngestJob,
} from "./contracts.ts";

export function hgSyncJobRequest(data: HgSyncJob): JobRequest<"hg-sync"> {
  const repo = safeJobIdPart(repositoryKey(data.repoUrl));
  let jobId: string;
  switch (data.kind) {
    case "hg-push":
      jobId = `hg-push|${repo}|${data.pushIds.length ? Math.max(...data.pushIds) : digest(...data.heads)}`;
      break;
    case "hg-newrepo":
      jobId = `hg-newrepo|${repo}`;
      break;
    case "git-push":
      jobId = `git-push|${repo}|${safeJobIdPart(data.eventId)}`;
      break;
    case "reconcile":
      jobId = `reconcile|${repo}|${Math.floor(Date.now() / 60_000)}`;
      break;
    case "pushlog-range":
      jobId = `pushlog-range|${repo}|${data.fromPushId}-${data.toPushId}`;
      break;
  }
  // Pokes (pushes, reconciles) of one repository collapse into one waiting
  // job; one arriving while a sync runs is re-queued after it
  // (keepLastIfActive). git pushes, new repositories and pushlog ranges are
  // never collapsed: each carries its own content (event id, creation, range).
  const poke = data.kind === "hg-push" || data.kind === "reconcile";
  const deduplication = poke ? { deduplication: { id: `hg-sync|${repo}`, keepLastIfActive: true } } : {};
  return { queue: "hg-sync", name: data.kind, data, opts: { ...DEFAULT_JOB_OPTIONS["hg-sync"], jobId, ...deduplication } };
}

export function tcIngestJobRequest(data: TcIngestJob): JobRequest<"tc-ingest"> {
  const host = safeJobIdPart(new URL(data.rootUrl).host);
  return {
    queue: "tc-ingest",
    name: data.kind,
    data,
    opts: { ...DEFAULT_JOB_OPTIONS["tc-ingest"], jobId: `tc|${host}|${safeJobIdPart(data.taskId)}|${data.runId}` },
  };
}

/**
 * Pulse messages SHOULD be under 8 KiB; a dead letter keeps this much of its
 * body (a generous prefix), with the full size and a sha256, so that a sender
 * of large distinct messages cannot fill Redis (each letter costs about this
 * much, whatever it was sent).
 */
export const MAX_DEAD_LETTER_BODY_BYTES = 64 * 1024;

export type DeadLetterInput = Pick<DeadLetterJob, "kind" | "reason" | "message">;

/**
 * Dead letters are keyed by their content (the sha256 of the whole body as
 * received, not of the kept prefix): the same bad message lands once, two
 * that differ only after the prefix land twice. The letter keeps at most
 * MAX_DEAD_LETTER_BODY_BYTES of the body, and credentials in URLs are masked
 * in the body, the routing key, the headers and the reason.
 */
export function deadLetterJobRequest(input: DeadLetterInput): JobRequest<"dead-letter"> {
  const { message } = input;
  const raw = Buffer.from(message.body, message.bodyEncoding === "base64" ? "base64" : "utf8");
  const bodyBytes = message.truncated?.bytes ?? raw.length;
  const bodySha256 = message.truncated?.sha256 ?? createHash("sha256").update(raw).digest("hex");
  const cut = raw.length > MAX_DEAD_LETTER_BODY_BYTES;
  let body = message.body;
  if (cut)
    body = message.bodyEncoding === "utf8" ? utf8Prefix(raw, MAX_DEAD_LETTER_BODY_BYTES) : raw.subarray(0, MAX_DEAD_LETTER_BODY_BYTES).toString("base64");
  const bodyTruncated = cut || message.truncated !== undefined;
  let redacted = false;
  const mask = (text: string) => {
    const masked = redactText(text);
    if (masked !== text) redacted = true;
    return masked;
  };
  const kept: OriginalMessage = {
    ...message,
    body: message.bodyEncoding === "utf8" ? mask(body) : body,
    routingKey: mask(message.routingKey),
    headers: redactHeaders(message.headers ?? {}, mask) as Record<string, unknown>,
    ...(bodyTruncated ? { truncated: { bytes: bodyBytes, sha256: bodySha256 } } : {}),
  };
  const note =
    bodyTruncated && !/\(body truncated to/.test(input.reason)
      ? ` (body truncated to its first ${Buffer.byteLength(kept.body, kept.bodyEncoding === "base64" ? "base64" : "utf8")} of ${bodyBytes} bytes)`
      : "";
  const data: DeadLetterJob = { kind: "dead-letter", reason: redactText(input.reason) + note, message: kept, bodyBytes, bodySha256, bodyTruncated, redacted };
  return {
    queue: "dead-letter",
    name: data.kind,
    data,
    opts: { ...DEFAULT_JOB_OPTIONS["dead-letter"], jobId: `dead|${digest(message.connection, message.exchange, message.routingKey, bodySha256)}` },
  };
}

/** The longest prefix of at most `max` bytes that ends on a UTF-8 character boundary, as text. */
function utf8Prefix(raw: Buffer, max: number): string {
  let end = Math.min(max, raw.length);
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  if (end < raw.length) while (end > max - 3 && (raw[end]! & 0xc0) === 0x80) end--;
  return raw.subarray(0, end).toString("utf8");
}

function redactHeaders(value: unknown, mask: (text: string) => string, depth = 0): unknown {
  if (typeof value === "string") return mask(value);
  if (depth > 20 || value === null || typeof value !== "object" || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map((item) => redactHeaders(item, mask, depth + 1));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, redactHeaders(item, mask, depth + 1)]));
}
