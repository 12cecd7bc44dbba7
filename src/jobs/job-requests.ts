/**
 * Job ids and per-job options for each payload. Ids are deterministic, so a
 * message delivered (or replayed) twice adds no second job: BullMQ ignores an
 * add whose id it already holds.
 */
import { DEFAULT_JOB_OPTIONS, digest, safeJobIdPart, type DeadLetterJob, type HgSyncJob, type JobRequest, type TcIngestJob } from "./contracts.ts";

/** Identity of a repository in ids and lock names: the URL without scheme or trailing slash. */
export function repositoryKey(repoUrl: string): string {
  return repoUrl.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "").toLowerCase();
}

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
  }
  // Pokes (pushes, reconciles) of one repository collapse into one waiting
  // job; one arriving while a sync runs is re-queued after it
  // (keepLastIfActive). git pushes and new repositories are never collapsed:
  // each carries its own content (event id, creation).
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

/** Dead letters are keyed by their content: the same bad message lands once. */
export function deadLetterJobRequest(data: DeadLetterJob): JobRequest<"dead-letter"> {
  const { message } = data;
  return {
    queue: "dead-letter",
    name: data.kind,
    data,
    opts: { ...DEFAULT_JOB_OPTIONS["dead-letter"], jobId: `dead|${digest(message.connection, message.exchange, message.routingKey, message.body)}` },
  };
}
