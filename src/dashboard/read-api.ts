/**
 * The read-only JSON API (README, "Commands" and "Operations"):
 *   GET /api/repositories
 *   GET /api/repositories/:name/pushes?limit=
 *   GET /api/repositories/:name/diff?from=REV&to=REV
 *   GET /api/comparisons?locale=&limit=
 *   GET /api/jobs?queue=&state=&jobId=&limit=   job history (JobRecord), newest first
 * Repository names contain '/' (l10n-central/de): they may be written as is
 * or percent-encoded; the last path segment says what is asked for.
 * Diffs come from the shared clone through the VCS back end, revisions are
 * validated as hex before anything runs, and the output is cut at a bound.
 * At most MAX_RUNNING_DIFFS diff processes run at once (each is an hg or git
 * process on a possibly large clone); MAX_WAITING_DIFFS more requests wait
 * their turn, and beyond that the answer is 503 with Retry-After, so a burst
 * of requests cannot start a process each.
 * Failure reasons in the job history are shown with URL credentials masked.
 */
import { existsSync } from "node:fs";
import { type Request, type Response, Router } from "express";
import { QUEUE_NAMES } from "../contract/contracts.ts";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { summaryFromCounts } from "../storage/comparison-counts.ts";
import type { Database } from "../storage/prisma.ts";
import type { VcsBackend, VcsKind } from "../vcs/backend.ts";
import { clonePathFor } from "../vcs/clone-path.ts";
import { redactText } from "./redact-secrets.ts";

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 200;
const MAX_DIFF_BYTES = 1024 * 1024;
export const MAX_RUNNING_DIFFS = 4;
export const MAX_WAITING_DIFFS = 8;
const DIFF_RETRY_AFTER_SECONDS = 2;
const REVISION = /^[0-9a-f]{12,40}$/i;

export interface ReadApiOptions {
  config: Config;
  db: Database;
  log: Logger;
  /** How to diff in a clone of each kind (the hg-sync back ends). */
  backends: Partial<Record<VcsKind, VcsBackend>>;
}

class BadRequest extends Error {}

/** A counting semaphore with a bounded queue: `acquire()` is undefined when even the queue is full. */
class DiffSlots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly maxRunning: number,
    private readonly maxWaiting: number,
  ) {}

  acquire(): Promise<() => void> | undefined {
    if (this.running < this.maxRunning) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxWaiting) return undefined;
    return new Promise((resolve) => this.waiting.push(() => resolve(this.releaser())));
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next in line.
      if (next) next();
      else this.running--;
    };
  }
}

function limitFrom(value: unknown): number {
  if (value === undefined) return DEFAULT_LIMIT;
  if (typeof value !== "string" || !/^\d+$/.test(value) || Number(value) < 1) throw new BadRequest("limit must be a whole number of at least 1");
  return Math.min(Number(value), MAX_LIMIT);
}

function revisionFrom(name: string, value: unknown): string {
  if (typeof value !== "string" || !REVISION.test(value)) throw new BadRequest(`${name} must be a revision: 12 to 40 hex digits`);
  return value.toLowerCase();
}

export function readApiRouter({ config, db, log, backends }: ReadApiOptions): Router {
  const router = Router();
  const diffSlots = new DiffSlots(MAX_RUNNING_DIFFS, MAX_WAITING_DIFFS);
  const handle =
    (work: (request: Request) => Promise<{ status?: number; body: unknown; headers?: Record<string, string> }>) =>
    async (request: Request, response: Response) => {
      try {
        const { status = 200, body, headers = {} } = await work(request);
        for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
        response.status(status).json(body);
      } catch (error) {
        if (error instanceof BadRequest) {
          response.status(400).json({ error: error.message });
          return;
        }
        log.error({ err: error, path: request.path }, "API request failed");
        response.status(500).json({ error: "internal error" });
      }
    };

  router.get(
    "/api/repositories",
    handle(async () => {
      const repositories = await db.repository.findMany({ orderBy: { name: "asc" }, include: { forest: true, locale: true } });
      return {
        body: repositories.map((r) => ({
          name: r.name,
          url: r.url,
          kind: r.kind,
          forest: r.forest?.name ?? null,
          locale: r.locale?.code ?? null,
          archived: r.archived,
          lastPushId: r.lastPushId,
          lastSyncedAt: r.lastSyncedAt,
        })),
      };
    }),
  );

  // `/api/repositories/<name with slashes>/<action>`
  router.get(
    "/api/repositories/*path",
    handle(async (request) => {
      const segments = ([] as string[]).concat((request.params as { path: string | string[] }).path);
      const action = segments.pop();
      const name = segments.join("/");
      if (!name || (action !== "pushes" && action !== "diff"))
        return { status: 404, body: { error: "not found: use /api/repositories/<name>/pushes or /diff" } };
      const repository = await db.repository.findUnique({ where: { name } });
      if (!repository) return { status: 404, body: { error: `unknown repository ${JSON.stringify(name.slice(0, 200))}` } };

      if (action === "pushes") {
        const limit = limitFrom(request.query.limit);
        const pushes = await db.push.findMany({
          where: { repositoryId: repository.id },
          orderBy: { pushId: "desc" },
          take: limit,
          include: { changesets: { orderBy: { position: "asc" }, include: { changeset: { include: { branch: true } } } } },
        });
        return {
          body: {
            repository: repository.name,
            pushes: pushes.map((p) => ({
              pushId: p.pushId,
              user: p.user,
              pushedAt: p.pushedAt,
              source: p.source,
              changesets: p.changesets.map(({ changeset: c }) => ({
                revision: c.revision,
                author: c.author,
                description: c.description,
                date: c.date,
                branch: c.branch?.name ?? null,
              })),
            })),
          },
        };
      }

      const from = revisionFrom("from", request.query.from);
      const to = revisionFrom("to", request.query.to);
      const backend = backends[repository.kind];
      if (!backend) return { status: 501, body: { error: `no ${repository.kind} back end in this process` } };
      const clone = clonePathFor(config.clones.dir, repository.url);
      if (!existsSync(clone)) return { status: 404, body: { error: "the repository has no clone yet" } };
      const slot = diffSlots.acquire();
      if (!slot)
        return { status: 503, headers: { "Retry-After": String(DIFF_RETRY_AFTER_SECONDS) }, body: { error: "too many diffs in progress; retry shortly" } };
      const release = await slot;
      try {
        const diff = await backend.diff(clone, from, to, { maxBytes: MAX_DIFF_BYTES });
        return { body: { repository: repository.name, from, to, truncated: diff.truncated, maxBytes: MAX_DIFF_BYTES, diff: diff.text } };
      } catch (error) {
        // Unknown revisions are the usual cause; the tool's message says which.
        log.info({ err: redactText((error as Error).message), repository: repository.name }, "diff failed");
        return { status: 404, body: { error: "could not diff these revisions in the clone (unknown revision?)" } };
      } finally {
        release();
      }
    }),
  );

  router.get(
    "/api/comparisons",
    handle(async (request) => {
      const limit = limitFrom(request.query.limit);
      const locale = request.query.locale;
      if (locale !== undefined && (typeof locale !== "string" || !/^[A-Za-z0-9_-]{1,40}$/.test(locale))) throw new BadRequest("locale must be a locale code");
      const comparisons = await db.comparison.findMany({
        where: locale ? { locale: { code: locale } } : {},
        orderBy: { id: "desc" },
        take: limit,
        include: { locale: true, build: true, revisions: { include: { changeset: true } } },
      });
      return {
        body: comparisons.map((c) => ({
          id: c.id,
          locale: c.locale.code,
          config: c.config,
          completion: c.completion,
          summary: summaryFromCounts(c),
          build: { rootUrl: c.build.rootUrl, taskId: c.build.taskId, runId: c.build.runId, state: c.build.state, resolvedAt: c.build.resolvedAt },
          revisions: Object.fromEntries(c.revisions.map((r) => [r.repository, r.changeset.revision])),
          artifact: { name: c.artifactName, link: `/artifacts/${c.id}` },
        })),
      };
    }),
  );
  router.get(
    "/api/jobs",
    handle(async (request) => {
      const limit = limitFrom(request.query.limit);
      const { queue, state, jobId } = request.query;
      if (queue !== undefined && !(QUEUE_NAMES as readonly unknown[]).includes(queue)) throw new BadRequest(`queue must be one of ${QUEUE_NAMES.join(", ")}`);
      if (state !== undefined && !["completed", "retrying", "failed", "stalled"].includes(state as string))
        throw new BadRequest("state must be completed, retrying, failed or stalled");
      if (jobId !== undefined && (typeof jobId !== "string" || jobId.length > 300)) throw new BadRequest("jobId must be a job id");
      const records = await db.jobRecord.findMany({
        where: { ...(queue ? { queue: queue as string } : {}), ...(state ? { state: state as string } : {}), ...(jobId ? { jobId: jobId as string } : {}) },
        orderBy: { id: "desc" },
        take: limit,
      });
      return {
        body: records.map(({ id: _id, ...record }) => ({
          ...record,
          jobId: redactText(record.jobId),
          error: record.error === null ? null : redactText(record.error),
        })),
      };
    }),
  );
  return router;
}
