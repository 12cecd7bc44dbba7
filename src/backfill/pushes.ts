/**
 * `pulse-bridge ingest pushes <repository> [--from ID] [--to ID]`: the pushes
 * of a tracked hg repository's pushlog range that the database lacks, stored
 * by one hg-sync job of kind `pushlog-range` for the span of the missing ones
 * (the worker re-reads that span of the pushlog under the repository's lock
 * and stores what is missing; every write is idempotent).
 *
 * Here: the repository is looked up, the pushlog asked for its last push id
 * (the default and bound of `--to`), and the pushes stored in the range
 * counted. Nothing missing: nothing enqueued. The job id names the span
 * (`pushlog-range|<repo>|<from>-<to>`), so running the command twice adds one
 * job, and a live push or reconcile meanwhile stores nothing twice.
 */
import { hgSyncJobRequest } from "../contract/job-requests.ts";
import type { Queues } from "../contract/queues.ts";
import type { Config } from "../core/config.ts";
import { PermanentError } from "../core/permanent-error.ts";
import { trimTrailingSlashes } from "../core/urls.ts";
import { discard, guardedFetch, readCapped, refusal, showUrl } from "../http/guarded-fetch.ts";
import type { Database } from "../storage/prisma.ts";
import { type EnqueueOutcome, enqueueNew } from "./enqueue-new.ts";

export interface PushesBackfillSummary {
  repository: { name: string; url: string; lastPushId: number };
  /** The pushlog's last push id, as it answered now. */
  pushlogLastPushId: number;
  dryRun: boolean;
  /** The range looked at (both included); from > to when there is nothing to look at. */
  from: number;
  to: number;
  stored: number;
  missing: number;
  /** The missing ids as ranges, e.g. "12-14, 20". */
  missingIds: string;
  /** The job, when something is missing. */
  job?: EnqueueOutcome & { fromPushId: number; toPushId: number };
}

/** A pushlog answer is small here (no pushes asked for); bounds a hostile one. */
const MAX_ANSWER_BYTES = 1024 * 1024;
/** As the worker's pushlog client. */
const PUSHLOG_TIMEOUT_MS = 60_000;

/** A tracked repository by URL (as `track` stored it) or by name (`l10n-central/de`). */
async function findRepository(db: Database, repository: string) {
  const url = trimTrailingSlashes(repository.trim());
  const repo = await db.repository.findFirst({
    where: { OR: [{ url }, { url: `${url}.git` }, { url: url.replace(/\.git$/, "") }, { name: url.replace(/^\/+/, "") }] },
    select: { id: true, name: true, url: true, kind: true, archived: true, lastPushId: true },
  });
  if (!repo) throw new Error(`${repository} is not a tracked repository (track it first: pulse-bridge track repo URL)`);
  if (repo.kind !== "hg") throw new Error(`${repo.name} is a git repository: it has no pushlog (a reconcile re-reads its branches)`);
  if (repo.archived) throw new Error(`${repo.name} is archived: the worker does not sync it (track it again to un-archive it)`);
  return repo;
}

/**
 * The pushlog's last push id: `json-pushes?version=2&startID=0&endID=0`
 * answers no pushes and `lastpushid`. The repository's host must still be
 * in ALLOWED_HOSTS (it may have changed since `track`); redirects are
 * followed only on that host, as the worker's pushlog client does.
 */
export async function readPushlogLastPushId(repoUrl: string, allowedHosts: readonly string[], timeoutMs: number): Promise<number> {
  const url = `${repoUrl}/json-pushes?version=2&startID=0&endID=0`;
  const what = `pushlog of ${repoUrl}`;
  const repository = new URL(repoUrl);
  const allowHttp = repository.protocol === "http:";
  const refused = refusal({ hosts: allowedHosts, describe: "ALLOWED_HOSTS", allowHttp }, repository);
  if (refused) throw new PermanentError(`${what}: refused: ${refused}`);
  const response = await guardedFetch(url, {
    policy: { hosts: [repository.host.toLowerCase()], describe: `the repository's host (${repository.host})`, allowHttp },
    signal: AbortSignal.timeout(timeoutMs),
    what,
    headers: { accept: "application/json" },
  });
  if (response.status < 200 || response.status >= 300) {
    discard(response.message);
    const message = `${what}: HTTP ${response.status} from ${showUrl(response.url)}`;
    throw response.status === 404 ? new PermanentError(message) : new Error(message);
  }
  const text = (await readCapped(response, MAX_ANSWER_BYTES, what, "the pushlog answer limit")).toString("utf8");
  let body: { lastpushid?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`${what} did not answer JSON`);
  }
  if (typeof body?.lastpushid !== "number" || !Number.isInteger(body.lastpushid)) throw new Error(`${what} did not answer in the version 2 format`);
  return body.lastpushid;
}

/** "1-3, 7, 9-10" */
export function idRanges(ids: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    parts.push(i === j ? String(ids[i]) : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

export async function backfillPushes(
  context: { config: Config; queues: Queues; db: Database },
  repository: string,
  options: { from?: number; to?: number; dryRun: boolean },
): Promise<PushesBackfillSummary> {
  const { config, db } = context;
  const repo = await findRepository(db, repository);
  const pushlogLastPushId = await readPushlogLastPushId(repo.url, config.clones.allowedHosts, PUSHLOG_TIMEOUT_MS);
  const from = options.from ?? 1;
  const to = Math.min(options.to ?? pushlogLastPushId, pushlogLastPushId);
  const summary: PushesBackfillSummary = {
    repository: { name: repo.name, url: repo.url, lastPushId: repo.lastPushId },
    pushlogLastPushId,
    dryRun: options.dryRun,
    from,
    to,
    stored: 0,
    missing: 0,
    missingIds: "",
  };
  if (from > to) return summary;
  const stored = await db.push.findMany({ where: { repositoryId: repo.id, pushId: { gte: from, lte: to } }, select: { pushId: true } });
  const have = new Set(stored.map((p) => p.pushId));
  const missing: number[] = [];
  for (let id = from; id <= to; id++) if (!have.has(id)) missing.push(id);
  summary.stored = have.size;
  summary.missing = missing.length;
  summary.missingIds = idRanges(missing);
  if (missing.length === 0) return summary;
  const fromPushId = missing[0]!;
  const toPushId = missing.at(-1)!;
  const request = hgSyncJobRequest({ kind: "pushlog-range", repoUrl: repo.url, fromPushId, toPushId });
  const [outcome] = await enqueueNew(context.queues, [request], options.dryRun);
  summary.job = { ...outcome!, fromPushId, toPushId };
  return summary;
}
