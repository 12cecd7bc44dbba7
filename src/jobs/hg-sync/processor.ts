/**
 * The hg-sync job processor: decides what a job means for the database
 * (untracked repository → done, nothing to do), serializes syncs per
 * repository with a Redis lock, and records each locked interval.
 *
 * When another worker holds the repository's lock the job is moved back to
 * delayed (BullMQ's DelayedError: no attempt is used up) and runs again
 * shortly; it then finds whatever the other sync stored and adds the rest.
 *
 * A new repository under a tracked Forest (hgpushes newrepo.1, which anyone
 * able to publish on the exchange can forge) is tracked only once it answers:
 * its Repository row is created after its first clone succeeded. Until then
 * it exists only as its hg-newrepo job, retried with the queue's backoff
 * (8 attempts over about 10 minutes); when they are used up the job fails for
 * good with "new repository not tracked: ..." (visible in Bull Board and
 * /api/jobs, logged as an error) and nothing retries it: the periodic
 * reconcile only pokes Repository rows.
 */
import { DelayedError, type Job } from "bullmq";
import type { HgSyncJob } from "../../contract/contracts.ts";
import { hgSyncJobRequest } from "../../contract/job-requests.ts";
import { addJob, type Queues } from "../../contract/queues.ts";
import type { Config } from "../../core/config.ts";
import type { Logger } from "../../core/log.ts";
import { PermanentError } from "../../core/permanent-error.ts";
import type { RedisClient } from "../../core/redis.ts";
import { repositoryKey } from "../../core/urls.ts";
import type { Database } from "../../storage/prisma.ts";
import { backendFor } from "../../vcs/backends.ts";
import { updateClone } from "../../vcs/clone-store.ts";
import { checkRepositoryUrl } from "../../vcs/url-policy.ts";
import { RepositoryLock } from "./repository-lock.ts";
import { type SyncOutcome, syncRepository } from "./sync-repository.ts";
import { finishSyncRun, startSyncRun } from "./sync-runs.ts";
import { findRepository, forestFor, type TrackedRepository, trackRepository } from "./tracking.ts";

/** repoUrl of the periodic job that pokes every tracked repository. */
export const RECONCILE_ALL = "*";

export type SyncResult = { skipped: string; repoUrl: string } | { reconciled: number } | ({ repository: string } & SyncOutcome);

export interface ProcessorDeps {
  config: Config;
  db: Database;
  redis: RedisClient;
  queues: Queues;
  log: Logger;
  workerName: string;
}

function lockKey(config: Config, repoUrl: string): string {
  return `${config.redis.prefix}:hg-sync:lock:${repositoryKey(repoUrl)}`;
}

/** A new repository under a tracked Forest, not tracked until its first clone works. */
interface PendingRepository {
  pending: true;
  url: string;
  name: string;
  forest: string;
  locale: string | undefined;
}

async function resolveRepository(deps: ProcessorDeps, data: HgSyncJob): Promise<TrackedRepository | PendingRepository | string> {
  const repo = await findRepository(deps.db, data.repoUrl);
  if (repo) {
    if (repo.archived) return "repository is archived";
    if (data.kind === "git-push" && repo.kind !== "git") return "repository is not a git repository";
    if (data.kind === "pushlog-range" && repo.kind !== "hg") return "repository is not an hg repository (no pushlog)";
    return repo;
  }
  if (data.kind !== "hg-newrepo") return "repository not tracked";
  const forest = await forestFor(deps.db, data.repoUrl);
  if (!forest) return "new repository is not under a tracked forest";
  // Refused URLs fail here, before anything is created or spawned.
  const url = checkRepositoryUrl(data.repoUrl, deps.config.clones.allowedHosts);
  const segments = new URL(url).pathname.split("/").filter(Boolean);
  return { pending: true, url, name: segments.join("/"), forest: forest.name, locale: segments.at(-1) };
}

/** The first clone of a pending repository failed: retried, or on the last attempt given up on, clearly. */
function newRepositoryFailure(deps: ProcessorDeps, job: Job<HgSyncJob>, pending: PendingRepository, error: Error): Error {
  const attempts = job.opts.attempts ?? 1;
  const attempt = job.attemptsMade + 1;
  const permanent = error instanceof PermanentError;
  const context = { jobId: job.id, repository: pending.name, forest: pending.forest, attempt, attempts, err: error.message };
  if (attempt < attempts && !permanent) {
    deps.log.warn(context, "new repository under a tracked forest does not answer yet; not tracked, retrying later");
    return error;
  }
  deps.log.error(
    context,
    "new repository under a tracked forest never answered: giving up, it is not tracked (once it answers: pulse-bridge track repo URL --forest NAME)",
  );
  return new PermanentError(`new repository not tracked: its first clone failed ${attempt} time(s); last error: ${error.message}`);
}

export async function processHgSyncJob(deps: ProcessorDeps, job: Job<HgSyncJob>, token: string | undefined): Promise<SyncResult> {
  const { config, db, log } = deps;
  const data = job.data;
  if (data.kind === "reconcile" && data.repoUrl === RECONCILE_ALL) {
    const repositories = await db.repository.findMany({ where: { archived: false }, select: { url: true } });
    for (const { url } of repositories) await addJob(deps.queues, hgSyncJobRequest({ kind: "reconcile", repoUrl: url }));
    return { reconciled: repositories.length };
  }

  const resolved = await resolveRepository(deps, data);
  if (typeof resolved === "string") return { skipped: resolved, repoUrl: String(data.repoUrl).slice(0, 300) };
  const pending = "pending" in resolved ? resolved : undefined;
  let repo = pending ? undefined : (resolved as TrackedRepository);
  const target = pending ?? repo!;
  // ALLOWED_HOSTS may have changed since the repository was tracked, or the
  // row was written by hand: check again before any process runs.
  checkRepositoryUrl(target.url, config.clones.allowedHosts);

  const { durability } = config.redis;
  const lock = await RepositoryLock.acquire(
    deps.redis,
    lockKey(config, target.url),
    config.hgSync.lockTtlMs,
    durability.mode === "replicas" ? { count: durability.replicas, timeoutMs: durability.waitTimeoutMs } : undefined,
  );
  if (!lock) {
    if (!token) throw new Error("repository is being synced by another worker");
    const wait = 500 + Math.floor(Math.random() * 1500);
    log.debug({ jobId: job.id, repository: target.name, wait }, "repository locked by another sync; delaying");
    await job.moveToDelayed(Date.now() + wait, token);
    throw new DelayedError();
  }
  const jobLog = log.child({ jobId: job.id, repository: target.name });
  let runId: number | undefined;
  try {
    if (pending) {
      const clone = {
        backend: backendFor("hg"),
        clonesDir: config.clones.dir,
        url: pending.url,
        staleAfterMs: config.hgSync.lockTtlMs,
        log: jobLog,
        signal: lock.signal,
      };
      await updateClone(clone).catch((error: Error) => {
        throw newRepositoryFailure(deps, job, pending, error);
      });
      lock.assertHeld();
      await trackRepository(db, config.clones.allowedHosts, pending.url, { kind: "hg", forest: pending.forest, locale: pending.locale });
      jobLog.info({ forest: pending.forest }, "new repository under a tracked forest answered its first clone: tracking it");
      repo = (await findRepository(db, pending.url))!;
    }
    if (!repo) throw new Error("unreachable: a repository is resolved or pending");
    // Re-read under the lock: the previous holder may have moved lastPushId.
    const current = (await findRepository(db, repo.url)) ?? repo;
    runId = await startSyncRun(db, repo.id, String(job.id), deps.workerName);
    const work =
      data.kind === "git-push"
        ? { kind: "git-push" as const, push: data }
        : data.kind === "hg-newrepo"
          ? { kind: "all-history" as const }
          : data.kind === "pushlog-range"
            ? { kind: "pushlog-range" as const, fromPushId: data.fromPushId, toPushId: data.toPushId }
            : { kind: "poke" as const };
    const outcome = await syncRepository(
      {
        db,
        log: jobLog,
        backend: backendFor(repo.kind),
        clonesDir: config.clones.dir,
        staleAfterMs: config.hgSync.lockTtlMs,
        assertHeld: () => lock.assertHeld(),
        signal: lock.signal,
        reportProgress: (progress) => job.updateProgress({ ...progress }),
      },
      current,
      work,
    );
    lock.assertHeld();
    await db.repository.update({ where: { id: repo.id }, data: { lastSyncedAt: new Date() } });
    await finishSyncRun(db, runId, "completed", outcome.pushesStored);
    jobLog.info({ ...outcome }, "repository synced");
    return { repository: repo.name, ...outcome };
  } catch (error) {
    if (runId !== undefined) await finishSyncRun(db, runId, `failed: ${(error as Error).message}`, 0).catch(() => {});
    throw error;
  } finally {
    await lock.release().catch((error: Error) => jobLog.warn({ err: error.message }, "could not release sync lock (it expires by itself)"));
  }
}
