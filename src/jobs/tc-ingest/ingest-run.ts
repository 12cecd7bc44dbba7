/**
 * One tc-ingest job: a Taskcluster run announced on TC_ROUTE (completed or
 * failed: compare-locales fails its task when a locale has errors, yet
 * uploads elmo.json) becomes a Build with its Comparisons.
 *
 * Failure classes (see ../errors.ts): a job that names no valid run, a task
 * the Queue API does not know, or an elmo.json that breaks the schema fail
 * at once with the reason; network trouble, 5xx and 429 are retried. A run
 * without elmo.json is recorded as such (Build.hasElmoJson = false) and the
 * job completes: that is a fact about the run, not an error.
 */
import { z } from "zod";
import type { TcIngestJob } from "../../contract/contracts.ts";
import type { Logger } from "../../core/log.ts";
import { PermanentError } from "../../core/permanent-error.ts";
import { trimTrailingSlashes } from "../../core/urls.ts";
import { countsFromSummary } from "../../storage/comparison-counts.ts";
import type { Database } from "../../storage/prisma.ts";
import { detailArtifact, findElmoJson } from "./artifact-names.ts";
import { completion, type ElmoComparison, formatPath, parseElmoJson } from "./elmo-json.ts";
import type { QueueApi } from "./queue-api.ts";
import { repositoryOfSource, resolveRepositoryPath } from "./repository-urls.ts";
import { announcedRunStatus } from "./run-status.ts";
import { type ComparisonRecord, storeBuild } from "./store-build.ts";

export interface IngestDependencies {
  db: Database;
  log: Logger;
  /** The Queue API client of a deployment, by root URL (throws for a root URL that is not configured). */
  queueApi(rootUrl: string): QueueApi;
  /** ELMO_JSON_MAX_COMPARISONS. */
  maxComparisons?: number;
}

/** What the job returns (kept by BullMQ, shown in Bull Board). */
export interface IngestResult {
  buildId: number;
  state: string;
  elmoJson: string | null;
  comparisons: number;
  placeholdersCreated: number;
}

// What a job must carry to name a run; anything else is a bad (e.g. hand-made) job.
const jobSchema = z.object({
  rootUrl: z.string().refine((value) => {
    try {
      return ["http:", "https:"].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, "must be an http(s) URL"),
  taskId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, "must be a Taskcluster slugid"),
  runId: z.number().int().min(0).max(1000),
  state: z.string().min(1).max(64),
  taskGroupId: z.string().max(64).optional().catch(undefined),
  // Absent from jobs queued by earlier versions (then the message says it); unreadable: ask the Queue API.
  resolved: z.iso.datetime({ offset: true }).nullable().optional().catch(null),
});

export async function ingestRun(job: TcIngestJob, deps: IngestDependencies): Promise<IngestResult> {
  const parsedJob = jobSchema.safeParse(job);
  if (!parsedJob.success) {
    const issue = parsedJob.error.issues[0]!;
    throw new PermanentError(`job does not name a Taskcluster run: ${formatPath(issue.path)}: ${issue.message}`);
  }
  const { taskId, runId } = parsedJob.data;
  const rootUrl = trimTrailingSlashes(parsedJob.data.rootUrl);
  const api = deps.queueApi(rootUrl);
  const announced = announcedRunStatus(job, parsedJob.data);

  // Independent requests: one round trip of latency instead of two or three.
  const [task, artifacts, status] = await Promise.all([
    api.task(taskId),
    api.listArtifacts(taskId, runId),
    announced ? Promise.resolve(announced) : api.runStatus(taskId, runId),
  ]);

  const elmoArtifact = findElmoJson(artifacts);
  const build = {
    rootUrl,
    taskId,
    runId,
    state: status?.state ?? parsedJob.data.state,
    taskGroupId: task.taskGroupId ?? parsedJob.data.taskGroupId ?? null,
    resolvedAt: status?.resolved ?? null,
    source: task.source ?? null,
  };

  if (!elmoArtifact) {
    const stored = await storeBuild(deps.db, { ...build, repository: null, compareLocalesVersion: null, hasElmoJson: false }, []);
    deps.log.info({ rootUrl, taskId, runId, state: build.state, artifacts: artifacts.length }, "run has no elmo.json: recorded without comparisons");
    return { buildId: stored.buildId, state: build.state, elmoJson: null, comparisons: 0, placeholdersCreated: 0 };
  }

  const where = `${elmoArtifact.name} of task ${taskId} run ${runId}`;
  const parsed = parseElmoJson(await api.artifactText(taskId, runId, elmoArtifact.name), { maxComparisons: deps.maxComparisons });
  if (!parsed.ok) throw new PermanentError(`${where}: ${parsed.reason}`);
  const elmo = parsed.elmo;

  const repository = elmo.repository ? trimTrailingSlashes(elmo.repository) : repositoryOfSource(task.source);
  const artifactsByName = new Map(artifacts.map((artifact) => [artifact.name, artifact]));
  const comparisons = elmo.comparisons.map((entry, index): ComparisonRecord => {
    const detail = detailArtifact(artifactsByName, elmoArtifact.name, entry.artifact);
    return {
      locale: entry.locale,
      config: entry.config,
      counts: countsFromSummary(entry.summary),
      completion: completion(entry.summary),
      artifactName: detail.name,
      artifactUrl: api.artifactUrl(taskId, runId, detail.name),
      artifactExpiresAt: detail.expires ?? null,
      revisions: revisionsOf(entry, index, repository, where),
    };
  });

  const stored = await storeBuild(
    deps.db,
    { ...build, repository: repository ?? null, compareLocalesVersion: elmo["compare-locales"], hasElmoJson: true },
    comparisons,
  );
  deps.log.info(
    { rootUrl, taskId, runId, state: build.state, buildId: stored.buildId, comparisons: comparisons.length, placeholdersCreated: stored.placeholdersCreated },
    "run ingested",
  );
  return {
    buildId: stored.buildId,
    state: build.state,
    elmoJson: elmoArtifact.name,
    comparisons: comparisons.length,
    placeholdersCreated: stored.placeholdersCreated,
  };
}

/** Resolves each revisions key to a repository URL; two keys naming one repository must agree. */
function revisionsOf(entry: ElmoComparison, index: number, repository: string | undefined, artifact: string): ComparisonRecord["revisions"] {
  const byRepository = new Map<string, string>();
  for (const [key, revision] of Object.entries(entry.revisions)) {
    const where = `${artifact}: elmo.json is invalid: comparisons[${index}].revisions[${JSON.stringify(key)}]`;
    const url = resolveRepositoryPath(repository, key);
    if (!url)
      throw new PermanentError(`${where}: cannot be resolved to a repository URL (elmo.json names no repository and the task's metadata.source gives none)`);
    const known = byRepository.get(url);
    if (known !== undefined && known !== revision) throw new PermanentError(`${where}: names ${url} again with another revision`);
    byRepository.set(url, revision);
  }
  return [...byRepository].map(([url, revision]) => ({ repository: url, revision }));
}
