/**
 * One sync of one repository, run while holding its lock: bring the clone up
 * to date, then store what is new.
 *
 * - hg pokes (push, reconcile, newrepo): every pushlog entry after
 *   `lastPushId` up to the pushlog's `lastpushid`, in pages, each page's
 *   changesets first and then its pushes with the new `lastPushId` (one
 *   transaction), so an interrupted sync resumes where it stopped.
 * - newrepo additionally stores every changeset reachable from the heads.
 * - pushlog range (backfill): the entries from..to the same way, starting no
 *   later than `lastPushId` so that raising it never skips an entry.
 * - git push: the pushed commits not yet stored, then one Push for the event
 *   (none for commits a poll already stored as a push).
 * - git reconcile: every commit reachable from the branches not yet stored;
 *   once the repository has history, one Push per branch update
 *   (poll-pushes.ts).
 *
 * Memory does not grow with history (README "Real sizes"): revision lists
 * stream from the tool in batches, what is stored already is asked of the
 * database per batch, and each batch is one transaction. So an import killed
 * midway resumes after its last committed batch when its job is taken over.
 * Progress goes to the job, the log and a metric (import-progress.ts).
 */

import type { GitPushJob } from "../../contract/contracts.ts";
import { gitPushSource } from "../../contract/push-source.ts";
import type { Logger } from "../../core/log.ts";
import type { Database } from "../../storage/prisma.ts";
import type { ChangesetRecord, VcsBackend } from "../../vcs/backend.ts";
import { updateClone } from "../../vcs/clone-store.ts";
import { MissingRevisionError } from "../../vcs/missing-revision-error.ts";
import { knownRevisions, linkChangesets, storeChangesets, storeGitPush, storePushes } from "./history-writer.ts";
import { ImportProgress, type ProgressData } from "./import-progress.ts";
import { hasHistory, pushesByBranchTip, revisionsInPushes, storePollPushes } from "./poll-pushes.ts";
import { fetchPushlogPage, PUSHLOG_PAGE_SIZE, type PushlogPage } from "./pushlog-client.ts";
import type { TrackedRepository } from "./tracking.ts";

export interface SyncContext {
  db: Database;
  log: Logger;
  backend: VcsBackend;
  clonesDir: string;
  staleAfterMs: number;
  /** Throws if the repository lock was lost; called before each write. */
  assertHeld(): void;
  signal?: AbortSignal;
  /** The job's progress (Bull Board); omitted outside a job. */
  reportProgress?: (data: ProgressData) => Promise<unknown>;
}

export interface SyncOutcome {
  cloned: boolean;
  repairs: string[];
  changesetsStored: number;
  pushesStored: number;
  lastPushId: number;
  gitPushId?: number;
}

/**
 * Changesets per transaction, and revisions per lookup and per tool run.
 * Every per-sync structure is bounded by a few batches, whatever the
 * history's size: revision lists stream from the tool, and what is stored
 * already is asked of the database one batch at a time.
 */
const BATCH = 2000;

/** A whole array as batches (a pushlog page's revisions). */
async function* inBatches(revisions: string[]): AsyncGenerator<string[]> {
  for (let start = 0; start < revisions.length; start += BATCH) yield revisions.slice(start, start + BATCH);
}

/**
 * Stores the revisions (oldest first, in batches) that the repository lacks,
 * one transaction per batch; the next batch is read from the clone while one
 * is being written. A batch found stored already (an interrupted import,
 * taken over by another worker) is skipped with one query, so an import
 * resumes after its last committed batch. `onStored` sees each stored batch.
 */
async function storeMissing(
  context: SyncContext,
  repo: TrackedRepository,
  clonePath: string,
  batches: AsyncIterable<string[]>,
  progress: ImportProgress,
  onStored?: (records: ChangesetRecord[]) => void,
): Promise<number> {
  const { db, backend } = context;
  let stored = 0;
  const read = async (slice: string[]) => {
    const known = await knownRevisions(db, repo.id, slice);
    const wanted = known.size ? slice.filter((rev) => !known.has(rev)) : slice;
    let records: ChangesetRecord[] = [];
    for await (const batch of backend.readChangesets(clonePath, wanted, BATCH)) records = records.concat(batch);
    return { records, known: known.size };
  };
  const iterator = batches[Symbol.asyncIterator]();
  const readNext = async () => {
    const next = await iterator.next();
    return next.done ? undefined : read(next.value);
  };
  try {
    let next = readNext();
    for (;;) {
      const batch = await next;
      if (!batch) break;
      next = readNext();
      // An unawaited prefetch must not become an unhandled rejection if this write fails.
      next.catch(() => {});
      const { records, known } = batch;
      if (records.length) progress.resumingAt(records[0]!.revision, known, BATCH);
      context.assertHeld();
      const fresh = await storeChangesets(db, repo.id, records);
      stored += fresh;
      onStored?.(records);
      progress.advance(fresh, known);
    }
  } finally {
    // Stops the tool when a write failed before the listing ended.
    await iterator.return?.(undefined);
  }
  return stored;
}

/** Changesets the clone holds (reachable from `heads`) that the repository lacks: the import's expected size. */
async function expectedChangesets(context: SyncContext, repo: TrackedRepository, clonePath: string, heads: string[]): Promise<number | undefined> {
  try {
    const [inClone, [row]] = await Promise.all([
      context.backend.countAncestors(clonePath, heads),
      context.db.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM "RepositoryChangeset" WHERE "repositoryId" = ${repo.id}`,
    ]);
    return Math.max(0, inClone - Number(row?.n ?? 0));
  } catch (error) {
    context.log.debug({ err: (error as Error).message }, "could not count the changesets to import; progress without percent");
    return undefined;
  }
}

/**
 * Pushes per pushlog page: from a small first page (asked for while pulling)
 * up to PUSHLOG_PAGE_SIZE, halved or grown so that a page lists about
 * PAGE_CHANGESETS changesets. A single push larger than that (the first push
 * of an imported repository can hold 100,000) is still one page: a push is
 * stored whole, after its changesets.
 */
const FIRST_PAGE_PUSHES = 20;
const PAGE_CHANGESETS = 10_000;

function nextPageSize(current: number, changesets: number): number {
  if (changesets > PAGE_CHANGESETS) return Math.max(1, Math.floor((current * PAGE_CHANGESETS) / changesets));
  return Math.min(PUSHLOG_PAGE_SIZE, current * 2);
}

async function ingestPushlog(
  context: SyncContext,
  repo: TrackedRepository,
  clonePath: string,
  outcome: SyncOutcome,
  progress: ImportProgress,
  firstPage?: Promise<PushlogPage>,
  range: PushlogRange = { start: repo.lastPushId, end: Number.POSITIVE_INFINITY },
): Promise<void> {
  let start = range.start;
  let pageSize = FIRST_PAGE_PUSHES;
  let pulledAgain = false;
  for (;;) {
    const pageEndAsked = Math.min(start + pageSize, range.end);
    const page = await (firstPage ?? fetchPushlogPage(repo.url, start, pageEndAsked));
    firstPage = undefined;
    const revisions = page.pushes.flatMap((push) => push.changesets);
    try {
      outcome.changesetsStored += await storeMissing(context, repo, clonePath, inBatches(revisions), progress);
    } catch (error) {
      // The pushlog was read while pulling: a push that landed meanwhile can
      // be listed but not pulled. Pull once more; after that it is a retry.
      if (!(error instanceof MissingRevisionError) || pulledAgain) throw error;
      context.log.info({ revision: error.revision }, "pushlog names a revision the clone lacks; pulling again");
      pulledAgain = true;
      await context.backend.pull(clonePath, repo.url, { log: context.log, signal: context.signal });
      firstPage = Promise.resolve(page);
      continue;
    }
    for await (const batch of inBatches(revisions)) await linkChangesets(context.db, repo.id, batch);
    context.assertHeld();
    outcome.pushesStored += await storePushes(
      context.db,
      repo.id,
      page.pushes.map((push) => ({ pushId: push.pushId, user: push.user, pushedAt: push.date, revisions: push.changesets })),
    );
    const last = Math.min(page.lastPushId, range.end);
    const pageEnd = Math.min(pageEndAsked, last);
    for (const push of page.pushes) outcome.lastPushId = Math.max(outcome.lastPushId, push.pushId);
    if (pageEnd >= last || pageEnd <= start) break;
    start = pageEnd;
    pageSize = nextPageSize(pageSize, revisions.length);
  }
}

/** Pushlog entries after `start` up to `end` (included). */
interface PushlogRange {
  start: number;
  end: number;
}

/** Passes the batches on, showing each to `see` first; a listing that fails becomes `onError`'s error. */
async function* tap(batches: AsyncIterable<string[]>, see: (batch: string[]) => void, onError?: (error: unknown) => Error): AsyncGenerator<string[]> {
  try {
    for await (const batch of batches) {
      see(batch);
      yield batch;
    }
  } catch (error) {
    throw onError ? onError(error) : error;
  }
}

/** Runs a listing to its end (it throws if a revision is unknown). */
async function drain(batches: AsyncIterable<string[]>): Promise<void> {
  for await (const _ of batches);
}

export async function syncRepository(
  context: SyncContext,
  repo: TrackedRepository,
  work: { kind: "poke" } | { kind: "all-history" } | { kind: "git-push"; push: GitPushJob } | { kind: "pushlog-range"; fromPushId: number; toPushId: number },
): Promise<SyncOutcome> {
  const { log, backend } = context;
  // storePushes raises lastPushId to the highest push stored, and pokes read
  // only after it: a range must not start beyond it, or the entries between
  // would never be read.
  const range: PushlogRange =
    work.kind === "pushlog-range"
      ? { start: Math.max(0, Math.min(work.fromPushId - 1, repo.lastPushId)), end: work.toPushId }
      : { start: repo.lastPushId, end: Number.POSITIVE_INFINITY };
  // The first pushlog page is asked for while pulling: the two round trips overlap.
  const firstPage = backend.kind === "hg" ? fetchPushlogPage(repo.url, range.start, Math.min(range.start + FIRST_PAGE_PUSHES, range.end)) : undefined;
  firstPage?.catch(() => {});
  const clone = await updateClone({ backend, clonesDir: context.clonesDir, url: repo.url, staleAfterMs: context.staleAfterMs, log, signal: context.signal });
  const outcome: SyncOutcome = { cloned: clone.cloned, repairs: clone.repairs, changesetsStored: 0, pushesStored: 0, lastPushId: repo.lastPushId };
  const progress = new ImportProgress(backend.kind, log, context.reportProgress);
  try {
    if (backend.kind === "hg") {
      // A first import (or a new repository's whole history) is worth a percent: count it.
      if (work.kind === "all-history" || (work.kind === "poke" && repo.lastPushId === 0))
        progress.expect(await expectedChangesets(context, repo, clone.path, await backend.heads(clone.path)));
      if (work.kind === "all-history") {
        outcome.changesetsStored += await storeMissing(context, repo, clone.path, backend.ancestors(clone.path, await backend.heads(clone.path)), progress);
      }
      await ingestPushlog(context, repo, clone.path, outcome, progress, firstPage, range);
      return outcome;
    }
    await syncGit(context, repo, clone.path, work, outcome, progress);
    return outcome;
  } finally {
    await progress.finish();
  }
}

async function syncGit(
  context: SyncContext,
  repo: TrackedRepository,
  clonePath: string,
  work: { kind: "poke" } | { kind: "all-history" } | { kind: "git-push"; push: GitPushJob } | { kind: "pushlog-range"; fromPushId: number; toPushId: number },
  outcome: SyncOutcome,
  progress: ImportProgress,
): Promise<void> {
  const { db, log, backend } = context;
  const heads = await backend.heads(clonePath);
  const firstImport = !(await hasHistory(db, repo.id));
  if (firstImport) progress.expect(await expectedChangesets(context, repo, clonePath, heads));
  if (work.kind !== "git-push") {
    // What a later reconcile stores is new since the last sync (bounded by
    // what was pushed meanwhile), kept with its parents to split it into pushes.
    const fresh = firstImport ? undefined : new Map<string, string[]>();
    const remember =
      fresh &&
      ((records: ChangesetRecord[]) => {
        for (const record of records) fresh.set(record.revision, record.parents);
      });
    outcome.changesetsStored += await storeMissing(context, repo, clonePath, backend.ancestors(clonePath, heads), progress, remember);
    // New commits reaching down to a root are history (an unrelated branch
    // pushed whole), not a push.
    if (fresh?.size && ![...fresh.values()].some((parents) => parents.length === 0)) {
      context.assertHeld();
      // Insertion order is the listing's (oldest first).
      const pushIds = await storePollPushes(db, repo.id, pushesByBranchTip(heads, [...fresh.keys()], fresh), new Date());
      outcome.pushesStored += pushIds.length;
      if (pushIds.length) outcome.lastPushId = pushIds.at(-1)!;
    }
    return;
  }
  const { push } = work;
  // The first sync of a repository imports every branch's history, whichever
  // job runs it, so that later polls see only what is new (poll-pushes.ts).
  if (firstImport) outcome.changesetsStored += await storeMissing(context, repo, clonePath, backend.ancestors(clonePath, heads), progress);
  const existing = await db.push.findUnique({ where: { repositoryId_eventId: { repositoryId: repo.id, eventId: push.eventId } }, select: { pushId: true } });
  if (existing) {
    outcome.gitPushId = existing.pushId;
    return;
  }
  const zero = /^0+$/;
  const after = zero.test(push.after) ? undefined : push.after.toLowerCase();
  // Of what the push reaches: the event's commits found there, and the last
  // TAIL revisions (the push when the event lists none).
  const TAIL = 250;
  const eventCommits = new Set(push.commits.map((c) => c.toLowerCase()));
  const reachedEventCommits = new Set<string>();
  let tail: string[] = [];
  if (after) {
    const before = zero.test(push.before) ? [] : [push.before.toLowerCase()];
    // Without a usable `before` (new branch, force push to unknown history)
    // the whole history of `after` is the candidate set; known ones are skipped.
    const known = before.length
      ? await drain(backend.ancestors(clonePath, before, before)).then(
          () => before,
          () => [],
        )
      : [];
    const reachable = tap(
      backend.ancestors(clonePath, [after], known),
      (batch) => {
        for (const revision of batch) if (eventCommits.has(revision)) reachedEventCommits.add(revision);
        tail = tail.concat(batch);
        if (tail.length > 2 * TAIL) tail = tail.slice(-TAIL);
      },
      () => new MissingRevisionError(after),
    );
    outcome.changesetsStored += await storeMissing(context, repo, clonePath, reachable, progress);
  }
  const ordered = push.commits.map((c) => c.toLowerCase()).filter((c) => reachedEventCommits.has(c));
  const candidates = ordered.length ? ordered : tail.slice(-TAIL);
  // Commits a poll (or another event) already stored as a push are not pushed twice.
  const pushed = await revisionsInPushes(db, repo.id, candidates);
  const pushRevisions = candidates.filter((revision) => !pushed.has(revision));
  if (candidates.length > 0 && pushRevisions.length === 0) {
    log.info({ eventId: push.eventId }, "every commit of the push is already part of a stored push (a poll found it first): no push added");
    return;
  }
  context.assertHeld();
  outcome.gitPushId = await storeGitPush(db, repo.id, {
    eventId: push.eventId,
    user: push.pusher,
    pushedAt: new Date(push.pushedAt),
    revisions: pushRevisions,
    source: gitPushSource(push),
  });
  if (outcome.gitPushId !== undefined) {
    outcome.pushesStored = 1;
    outcome.lastPushId = outcome.gitPushId;
  }
}
