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
 */

import type { GitPushJob } from "../../contract/contracts.ts";
import { gitPushSource } from "../../contract/push-source.ts";
import type { Logger } from "../../core/log.ts";
import type { Database } from "../../storage/prisma.ts";
import type { ChangesetRecord, VcsBackend } from "../../vcs/backend.ts";
import { updateClone } from "../../vcs/clone-store.ts";
import { MissingRevisionError } from "../../vcs/missing-revision-error.ts";
import { knownRevisions, linkChangesets, storeChangesets, storeGitPush, storePushes } from "./history-writer.ts";
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
}

export interface SyncOutcome {
  cloned: boolean;
  repairs: string[];
  changesetsStored: number;
  pushesStored: number;
  lastPushId: number;
  gitPushId?: number;
}

const BATCH = 2000;

/**
 * Stores the given revisions (oldest first) that the repository lacks, in
 * batches; the next batch is read from the clone while one is being written.
 * `fresh`, when given, receives each stored revision with its parents.
 */
async function storeMissing(
  context: SyncContext,
  repo: TrackedRepository,
  clonePath: string,
  revisions: string[],
  progress = false,
  fresh?: Map<string, string[]>,
): Promise<number> {
  const { db, log, backend } = context;
  let stored = 0;
  const started = Date.now();
  const read = async (start: number): Promise<ChangesetRecord[]> => {
    const slice = revisions.slice(start, start + BATCH);
    const known = await knownRevisions(db, repo.id, slice);
    const wanted = slice.filter((rev) => !known.has(rev));
    let records: ChangesetRecord[] = [];
    for await (const batch of backend.readChangesets(clonePath, wanted, BATCH)) records = records.concat(batch);
    return records;
  };
  let next = revisions.length ? read(0) : undefined;
  for (let start = 0; start < revisions.length; start += BATCH) {
    const records = await next!;
    next = start + BATCH < revisions.length ? read(start + BATCH) : undefined;
    // An unawaited prefetch must not become an unhandled rejection if this write fails.
    next?.catch(() => {});
    context.assertHeld();
    stored += await storeChangesets(db, repo.id, records);
    for (const record of records) fresh?.set(record.revision, record.parents);
    if (progress || revisions.length > BATCH) {
      log.info(
        { repository: repo.name, done: Math.min(start + BATCH, revisions.length), total: revisions.length, elapsedMs: Date.now() - started },
        "storing history",
      );
    }
  }
  return stored;
}

async function ingestPushlog(
  context: SyncContext,
  repo: TrackedRepository,
  clonePath: string,
  outcome: SyncOutcome,
  firstPage?: Promise<PushlogPage>,
  range: PushlogRange = { start: repo.lastPushId, end: Number.POSITIVE_INFINITY },
): Promise<void> {
  let start = range.start;
  let pulledAgain = false;
  for (;;) {
    const page = await (firstPage ?? fetchPushlogPage(repo.url, start, Math.min(start + PUSHLOG_PAGE_SIZE, range.end)));
    firstPage = undefined;
    const revisions = page.pushes.flatMap((push) => push.changesets);
    try {
      outcome.changesetsStored += await storeMissing(context, repo, clonePath, revisions);
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
    await linkChangesets(context.db, repo.id, revisions);
    context.assertHeld();
    outcome.pushesStored += await storePushes(
      context.db,
      repo.id,
      page.pushes.map((push) => ({ pushId: push.pushId, user: push.user, pushedAt: push.date, revisions: push.changesets })),
    );
    const last = Math.min(page.lastPushId, range.end);
    const pageEnd = Math.min(start + PUSHLOG_PAGE_SIZE, last);
    outcome.lastPushId = Math.max(outcome.lastPushId, ...page.pushes.map((p) => p.pushId));
    if (pageEnd >= last || pageEnd <= start) break;
    start = pageEnd;
  }
}

/** Pushlog entries after `start` up to `end` (included). */
interface PushlogRange {
  start: number;
  end: number;
}

export async function syncRepository(
  context: SyncContext,
  repo: TrackedRepository,
  work: { kind: "poke" } | { kind: "all-history" } | { kind: "git-push"; push: GitPushJob } | { kind: "pushlog-range"; fromPushId: number; toPushId: number },
): Promise<SyncOutcome> {
  const { db, log, backend } = context;
  // storePushes raises lastPushId to the highest push stored, and pokes read
  // only after it: a range must not start beyond it, or the entries between
  // would never be read.
  const range: PushlogRange =
    work.kind === "pushlog-range"
      ? { start: Math.max(0, Math.min(work.fromPushId - 1, repo.lastPushId)), end: work.toPushId }
      : { start: repo.lastPushId, end: Number.POSITIVE_INFINITY };
  // The first pushlog page is asked for while pulling: the two round trips overlap.
  const firstPage = backend.kind === "hg" ? fetchPushlogPage(repo.url, range.start, Math.min(range.start + PUSHLOG_PAGE_SIZE, range.end)) : undefined;
  firstPage?.catch(() => {});
  const clone = await updateClone({ backend, clonesDir: context.clonesDir, url: repo.url, staleAfterMs: context.staleAfterMs, log, signal: context.signal });
  const outcome: SyncOutcome = { cloned: clone.cloned, repairs: clone.repairs, changesetsStored: 0, pushesStored: 0, lastPushId: repo.lastPushId };

  if (backend.kind === "hg") {
    if (work.kind === "all-history") {
      const all = await backend.ancestors(clone.path, await backend.heads(clone.path));
      outcome.changesetsStored += await storeMissing(context, repo, clone.path, all, true);
    }
    await ingestPushlog(context, repo, clone.path, outcome, firstPage, range);
    return outcome;
  }

  // git
  const heads = await backend.heads(clone.path);
  if (work.kind !== "git-push") {
    const fresh = (await hasHistory(db, repo.id)) ? new Map<string, string[]>() : undefined;
    const all = await backend.ancestors(clone.path, heads);
    outcome.changesetsStored += await storeMissing(context, repo, clone.path, all, true, fresh);
    // New commits reaching down to a root are history (an unrelated branch
    // pushed whole), not a push.
    if (fresh?.size && ![...fresh.values()].some((parents) => parents.length === 0)) {
      context.assertHeld();
      const pushIds = await storePollPushes(db, repo.id, pushesByBranchTip(heads, all, fresh), new Date());
      outcome.pushesStored += pushIds.length;
      if (pushIds.length) outcome.lastPushId = pushIds.at(-1)!;
    }
    return outcome;
  }
  const { push } = work;
  // The first sync of a repository imports every branch's history, whichever
  // job runs it, so that later polls see only what is new (poll-pushes.ts).
  if (!(await hasHistory(db, repo.id)))
    outcome.changesetsStored += await storeMissing(context, repo, clone.path, await backend.ancestors(clone.path, heads), true);
  const existing = await db.push.findUnique({ where: { repositoryId_eventId: { repositoryId: repo.id, eventId: push.eventId } }, select: { pushId: true } });
  if (existing) {
    outcome.gitPushId = existing.pushId;
    return outcome;
  }
  const zero = /^0+$/;
  const after = zero.test(push.after) ? undefined : push.after.toLowerCase();
  let reachable: string[] = [];
  if (after) {
    const before = zero.test(push.before) ? [] : [push.before.toLowerCase()];
    // Without a usable `before` (new branch, force push to unknown history)
    // the whole history of `after` is the candidate set; known ones are skipped.
    const known = before.length
      ? await backend.ancestors(clone.path, before).then(
          () => before,
          () => [],
        )
      : [];
    try {
      reachable = await backend.ancestors(clone.path, [after], known);
    } catch {
      throw new MissingRevisionError(after);
    }
  }
  outcome.changesetsStored += await storeMissing(context, repo, clone.path, reachable, true);
  const reachableSet = new Set(reachable);
  const eventCommits = push.commits.map((c) => c.toLowerCase()).filter((c) => reachableSet.has(c));
  const candidates = eventCommits.length ? eventCommits : reachable.slice(-250);
  // Commits a poll (or another event) already stored as a push are not pushed twice.
  const pushed = await revisionsInPushes(db, repo.id, candidates);
  const pushRevisions = candidates.filter((revision) => !pushed.has(revision));
  if (candidates.length > 0 && pushRevisions.length === 0) {
    log.info({ eventId: push.eventId }, "every commit of the push is already part of a stored push (a poll found it first): no push added");
    return outcome;
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
  return outcome;
}
