/**
 * Typed job contracts: the map from BullMQ queue name to job name and payload.
 * The bridge adds jobs with these types and the workers consume them, so the
 * two cannot disagree.
 *
 * Glossary
 * - original message: what the bridge received (exchange, routing key, body,
 *   headers), kept in every job so it can be inspected and replayed.
 * - poke: an hg-sync job says "repository R has news"; the worker then reads
 *   everything new from upstream, so duplicate, missed or reordered pokes all
 *   end in the same database.
 */
import { createHash } from "node:crypto";
import type { JobsOptions } from "bullmq";
import type { FeedKind } from "../core/config.ts";

export const QUEUE_NAMES = ["hg-sync", "tc-ingest", "dead-letter"] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** The AMQP delivery a job came from. */
export interface OriginalMessage {
  /** The connection it came in on: "pulse" (PULSE_URL), a TC_EXTRA_SOURCES name, or "github-webhook" (our receiver, push-source.ts). */
  connection: string;
  /** The feed (our Pulse queue) it came from. */
  feed: FeedKind;
  exchange: string;
  routingKey: string;
  /** The body as received: UTF-8 text, or base64 when it was not valid UTF-8. */
  body: string;
  bodyEncoding: "utf8" | "base64";
  /** AMQP headers (e.g. Taskcluster's CC routes). */
  headers: Record<string, unknown>;
  redelivered: boolean;
  receivedAt: string;
  /** Present when `body` holds only the first bytes of what was received. */
  truncated?: { bytes: number; sha256: string };
}

/** hgpushes changegroup.1: new pushes up to `maxPushId` in the repository at `repoUrl`. */
export interface HgPushJob {
  kind: "hg-push";
  repoUrl: string;
  heads: string[];
  /** Push ids announced in the message (may be empty: then the pushlog is asked). */
  pushIds: number[];
  message: OriginalMessage;
}

/** hgpushes newrepo.1: a repository was created (tracked only under a Forest). */
export interface HgNewRepoJob {
  kind: "hg-newrepo";
  repoUrl: string;
  message: OriginalMessage;
}

/** A GitHub push (either exchange), normalized. */
export interface GitPushJob {
  kind: "git-push";
  /** https://github.com/<owner>/<repo> */
  repoUrl: string;
  /** GitHub's delivery/event id: one Push per event, however often delivered. */
  eventId: string;
  ref: string;
  before: string;
  after: string;
  /** Pushed commit ids, oldest first. */
  commits: string[];
  pusher: string;
  /** ISO time of the push (head commit timestamp when the event has no push time). */
  pushedAt: string;
  message: OriginalMessage;
}

/** Periodic (or manual) poke of one tracked repository; carries no message. */
export interface ReconcileJob {
  kind: "reconcile";
  repoUrl: string;
}

/**
 * Backfill (`pulse-bridge ingest pushes`): re-read the pushlog entries
 * `fromPushId`..`toPushId` (both included) of a tracked hg repository and
 * store the pushes and changesets missing from the database.
 */
export interface PushlogRangeJob {
  kind: "pushlog-range";
  repoUrl: string;
  fromPushId: number;
  toPushId: number;
}

export type HgSyncJob = HgPushJob | HgNewRepoJob | GitPushJob | ReconcileJob | PushlogRangeJob;

/** A task-completed or task-failed message on TC_ROUTE. */
export interface TcIngestJob {
  kind: "tc-run";
  rootUrl: string;
  taskId: string;
  runId: number;
  /** The run's state as announced: completed, failed or exception. */
  state: string;
  taskGroupId: string;
  /**
   * When the run resolved (ISO 8601), as the message announced it
   * (`status.runs[runId].resolved`); null when it did not, so the worker asks
   * the Queue API. Absent from jobs queued by versions before 2026-12: the
   * worker then reads it from `message`, which otherwise serves inspection
   * and replay only.
   */
  resolved?: string | null;
  message: OriginalMessage;
}

export interface DeadLetterJob {
  kind: "dead-letter";
  /** Why it could not become a job: human readable, names the failing field. */
  reason: string;
  /** The message, its body bounded to MAX_DEAD_LETTER_BODY_BYTES and its URL credentials masked. */
  message: OriginalMessage;
  /** Size of the body as received, in bytes. */
  bodyBytes: number;
  /** sha256 (hex) of the body as received: tells distinct large messages apart. */
  bodySha256: string;
  /** `message.body` is only a prefix: the letter can be inspected but not replayed. */
  bodyTruncated: boolean;
  /** Credentials in URLs were masked in the kept body, routing key or headers. */
  redacted: boolean;
}

export interface JobPayloads {
  "hg-sync": HgSyncJob;
  "tc-ingest": TcIngestJob;
  "dead-letter": DeadLetterJob;
}

/** A job ready to be added: what the bridge (and replay) produce. */
export interface JobRequest<Q extends QueueName = QueueName> {
  queue: Q;
  name: JobPayloads[Q]["kind"];
  data: JobPayloads[Q];
  opts: JobsOptions & { jobId: string };
}

export type AnyJobRequest = { [Q in QueueName]: JobRequest<Q> }[QueueName];

/** Short stable digest for job ids. */
export function digest(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 24);
}

/**
 * BullMQ refuses ':' in custom ids and integer-looking ids; keep ids readable
 * but safe by replacing anything outside a conservative alphabet.
 */
export function safeJobIdPart(text: string): string {
  return text.replace(/[^A-Za-z0-9._/@-]/g, "_").slice(0, 200);
}

/** Retention and retry defaults per queue (overridable per job). */
export const DEFAULT_JOB_OPTIONS: Record<QueueName, JobsOptions> = {
  "hg-sync": {
    attempts: 8,
    backoff: { type: "exponential", delay: 5_000 },
    removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  },
  "tc-ingest": {
    attempts: 6,
    backoff: { type: "exponential", delay: 5_000 },
    removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  },
  // Dead letters are never processed automatically: they wait for an operator
  // (replay --dead-letter). They stay waiting, where BullMQ's removeOn*
  // options do not apply; DEAD_LETTER_MAX_COUNT / DEAD_LETTER_MAX_AGE bound
  // them instead (jobs/dead-letter-retention.ts, run by the bridge).
  "dead-letter": {
    attempts: 1,
    removeOnComplete: false,
    removeOnFail: false,
  },
};
