/**
 * The ledger of a chaos run: every message the harness publishes, with the
 * effect it must have. Built from the real formats and a seeded generator, so
 * a run can be repeated exactly (CHAOS_SEED).
 *
 * Kinds, by share of the stream:
 * - hg-push (40%): changegroup.1 to one of several repositories, push ids
 *   rising per repository → one hg-sync job (and, with an hg-sync pool, its pushes);
 * - tc-run (35%): task-completed whose run has an elmo.json with 4 comparisons
 *   → one Build with 4 Comparisons;
 * - tc-no-elmo (5%): a run without elmo.json → a Build with hasElmoJson false;
 * - tc-bad-elmo (5%): elmo.json breaking the schema → the tc-ingest job fails
 *   permanently with the schema's reason, and no Build;
 * - duplicate (10%): an earlier valid message again, byte for byte → nothing new;
 * - invalid (5%): a body the bridge must refuse → one dead letter with a reason.
 *
 * Expected job ids come from routeMessage itself (pure), so the ledger and
 * the bridge cannot disagree on identity, only on delivery.
 */

import { type Config, type FeedKind, type PulseExchanges, pulseFeeds } from "../src/core/config.ts";
import { type RouteDecision, routeMessage } from "../src/routing/route-message.ts";
import type { StandInTask } from "../src/stand-ins/queue-api-server.ts";
import { formatJson } from "../test/support/formats.ts";
import { taskCompletedMessage } from "../test/support/pulse.ts";
import { compareLocalesArtifacts, realisticElmoJson, standInTask } from "../test/tc-ingest/fixtures.ts";

export type EntryKind = "hg-push" | "tc-run" | "tc-no-elmo" | "tc-bad-elmo" | "duplicate" | "invalid";

export interface LedgerEntry {
  seq: number;
  kind: EntryKind;
  feed: FeedKind;
  exchange: string;
  routingKey: string;
  body: Buffer;
  headers?: Record<string, unknown>;
  /** The job routeMessage makes of it (queue and id). */
  job: { queue: "hg-sync" | "tc-ingest" | "dead-letter"; id: string };
  /** tc-*: the task; the duplicate's original kind for duplicates. */
  taskId?: string;
  duplicateOf?: number;
}

export interface Ledger {
  entries: LedgerEntry[];
  /** Tasks the Queue API stand-in must serve. */
  tasks: StandInTask[];
  repositories: string[];
  comparisonsPerBuild: number;
  /** Per repository, the highest push id announced (every push up to it must be stored, once). */
  pushesExpected: Map<string, number>;
}

/** mulberry32: small, seeded, good enough to vary a stream reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hgEnvelope = formatJson<any>("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json");

export interface LedgerOptions {
  messages: number;
  seed: number;
  /** Repository URLs the hg pushes go to (default: made-up hg.mozilla.org ones). */
  repositories?: string[];
  /**
   * Pushes that exist upstream per repository. The k-th message to a
   * repository announces push 1 + (k mod pushesPerRepository): messages are
   * pokes, so several announcing one push make one job (same id).
   */
  pushesPerRepository?: number;
  /** The real head of a push upstream, when there is an upstream. */
  headFor?: (repository: string, pushId: number) => string;
}

export function buildLedger(config: Config, options: LedgerOptions): Ledger {
  const random = seededRandom(options.seed);
  const hex40 = () => Array.from({ length: 40 }, () => "0123456789abcdef"[Math.floor(random() * 16)]).join("");
  // A small pool of revisions, so that many builds share placeholder changesets (contention on purpose).
  const revisionPool = Array.from({ length: 50 }, hex40);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
  const repositories = options.repositories ?? Array.from({ length: 6 }, (_, i) => `https://hg.mozilla.org/l10n-central/chaos${i}`);
  const pushesPerRepository = options.pushesPerRepository ?? Number.MAX_SAFE_INTEGER;
  const messagesTo = new Map<string, number>();
  const entries: LedgerEntry[] = [];
  const tasks: StandInTask[] = [];
  const valid: LedgerEntry[] = [];

  const add = (
    seq: number,
    kind: EntryKind,
    feed: FeedKind,
    exchangeKey: keyof PulseExchanges,
    routingKey: string,
    body: Buffer,
    headers?: Record<string, unknown>,
    taskId?: string,
  ) => {
    const entry = ledgerEntry(config, { seq, kind, feed, exchangeKey, routingKey, body, headers, taskId });
    entries.push(entry);
    if (kind !== "invalid") valid.push(entry);
  };

  for (let seq = 0; seq < options.messages; seq++) {
    const roll = random();
    if (roll < 0.1 && valid.length > 0) {
      const original = pick(valid);
      entries.push({ ...original, seq, kind: "duplicate", duplicateOf: original.seq });
    } else if (roll < 0.15) {
      // Unique per seq, so each is its own dead letter (dead letters are keyed by content).
      const bad = [
        () => Buffer.from(`{"payload": {"type": "changegroup.1", "data": {"repo_url": "file:///etc/${seq}", "heads": [], "pushlog_pushes": []}}}`),
        () => Buffer.from(`not json ${seq}`),
        () => Buffer.concat([Buffer.from(`{"seq": ${seq}, "x": "`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
        () =>
          Buffer.from(
            JSON.stringify({ payload: { type: "changegroup.1", data: { repo_url: repositories[0], heads: [`--upload-pack=${seq}`], pushlog_pushes: [] } } }),
          ),
      ][seq % 4]!;
      add(seq, "invalid", "hgpushes", "hgpushes", `chaos/invalid/${seq}`, bad());
    } else if (roll < 0.55) {
      const repo = pick(repositories);
      const k = messagesTo.get(repo) ?? 0;
      messagesTo.set(repo, k + 1);
      const pushId = 1 + (k % pushesPerRepository);
      const madeUpHead = hex40(); // drawn either way, so the stream is the same with or without an upstream
      const entry = hgPushEntry(config, seq, repo, pushId, options.headFor?.(repo, pushId) ?? madeUpHead);
      entries.push(entry);
      valid.push(entry);
    } else {
      const kind: EntryKind = roll < 0.9 ? "tc-run" : roll < 0.95 ? "tc-no-elmo" : "tc-bad-elmo";
      const message = taskCompletedMessage(seq + options.seed * 1_000_000, config);
      const elmo = realisticElmoJson({ geckoStrings: pick(revisionPool), de: pick(revisionPool), fr: pick(revisionPool) });
      if (kind === "tc-bad-elmo") (elmo.comparisons[0]!.summary as Record<string, unknown>).missing = -seq - 1;
      const artifacts =
        kind === "tc-no-elmo"
          ? [{ name: "public/logs/live_backing.log", content: "no compare-locales here", contentType: "text/plain" }]
          : compareLocalesArtifacts(elmo);
      tasks.push(standInTask({ taskId: message.taskId, taskGroupId: message.body.status.taskGroupId, artifacts }));
      add(seq, kind, "taskcluster", "taskCompleted", message.routingKey, Buffer.from(JSON.stringify(message.body)), message.options.headers, message.taskId);
    }
  }
  // A poke makes the worker read the pushlog up to its newest push: every push upstream.
  const pushesExpected = new Map([...messagesTo.keys()].map((repo) => [repo, pushesPerRepository]));
  return { entries, tasks, repositories, comparisonsPerBuild: 4, pushesExpected };
}

/** One ledger entry, with the job routeMessage makes of it (checked against the kind's expected queue). */
function ledgerEntry(
  config: Config,
  e: {
    seq: number;
    kind: EntryKind;
    feed: FeedKind;
    exchangeKey: keyof PulseExchanges;
    routingKey: string;
    body: Buffer;
    headers?: Record<string, unknown>;
    taskId?: string;
  },
): LedgerEntry {
  const exchange = config.pulse.exchanges[e.exchangeKey];
  const feed = pulseFeeds(config).find((f) => f.kind === e.feed && f.connection === "pulse")!;
  const decision: RouteDecision = routeMessage(
    { feed, exchange, routingKey: e.routingKey, content: e.body, headers: e.headers ?? {}, redelivered: false },
    config,
  );
  if (decision.action === "ignore") throw new Error(`ledger entry ${e.seq} (${e.kind}) would be ignored: ${decision.reason}`);
  const expectedQueue = e.kind === "invalid" ? "dead-letter" : e.feed === "hgpushes" ? "hg-sync" : "tc-ingest";
  if (decision.job.queue !== expectedQueue) throw new Error(`ledger entry ${e.seq} (${e.kind}) routes to ${decision.job.queue}, not ${expectedQueue}`);
  return {
    seq: e.seq,
    kind: e.kind,
    feed: e.feed,
    exchange,
    routingKey: e.routingKey,
    body: e.body,
    headers: e.headers,
    job: { queue: decision.job.queue, id: decision.job.opts.jobId },
    taskId: e.taskId,
  };
}

/** The changegroup.1 message announcing push `pushId` (head `head`) of `repo`. */
export function hgPushEntry(config: Config, seq: number, repo: string, pushId: number, head: string): LedgerEntry {
  const body = structuredClone(hgEnvelope);
  body.payload.data.repo_url = repo;
  body.payload.data.heads = [head];
  body.payload.data.pushlog_pushes = [{ ...body.payload.data.pushlog_pushes[0], pushid: pushId }];
  body._meta.routing_key = new URL(repo).pathname.slice(1);
  return ledgerEntry(config, {
    seq,
    kind: "hg-push",
    feed: "hgpushes",
    exchangeKey: "hgpushes",
    routingKey: body._meta.routing_key,
    body: Buffer.from(JSON.stringify(body)),
  });
}

/** Entries whose effect is checked (a duplicate's effect is its original's). */
export function distinctEntries(ledger: Ledger): LedgerEntry[] {
  return ledger.entries.filter((entry) => entry.kind !== "duplicate");
}
