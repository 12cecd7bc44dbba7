/**
 * The Taskcluster Queue API as tc-ingest needs it: a task's definition, a
 * run's artifacts (every page), and an artifact's content behind its 303.
 *
 * Calls go through the official taskcluster-client (one client per root URL,
 * so several deployments can feed us side by side). It retries 5xx and
 * network errors a few times itself; what is still failing afterwards (and
 * 429, which it does not retry) is thrown as an ordinary error and BullMQ
 * retries the job with its backoff. Answers that retrying cannot change
 * (404, 403, 410, ...) become PermanentJobError with the reason.
 */
import taskcluster, { type QueueClient, type TaskclusterError } from "taskcluster-client";
import { z } from "zod";
import { PermanentJobError } from "../errors.ts";

/** In-client retries: quick blips only; longer outages are BullMQ's backoff. */
const CLIENT_RETRIES = 2;
/** A guard against a listing that never ends (a buggy server, a token loop). */
const MAX_ARTIFACT_PAGES = 200;
/** elmo.json for every locale of several trees is some hundred KB; anything near this is not one. */
const MAX_ARTIFACT_BYTES = 32 * 1024 * 1024;

export interface TaskDefinition {
  taskGroupId: string | undefined;
  /** metadata.source: where the task was defined (repository file URL). */
  source: string | undefined;
}

export interface ArtifactEntry {
  name: string;
  storageType: string;
  expires: Date | undefined;
}

export interface RunStatus {
  state: string;
  resolved: Date | undefined;
}

// Lenient readers: Taskcluster's schemas are additionalProperties:false, but
// they grow between versions; we read only what we use.
const taskSchema = z.looseObject({
  taskGroupId: z.string().optional(),
  metadata: z.looseObject({ source: z.string().optional() }).optional(),
});

const isoDate = z.iso.datetime({ offset: true }).transform((value) => new Date(value));

const artifactListSchema = z.looseObject({
  artifacts: z.array(
    z.looseObject({
      name: z.string().min(1),
      storageType: z.string(),
      expires: isoDate.optional().catch(undefined),
    }),
  ),
  continuationToken: z.string().min(1).optional(),
});

const statusSchema = z.looseObject({
  status: z.looseObject({
    runs: z.array(z.looseObject({ runId: z.number(), state: z.string(), resolved: isoDate.optional().catch(undefined) })).default([]),
  }),
});

export class QueueApi {
  private readonly client: QueueClient;

  constructor(
    readonly rootUrl: string,
    private readonly timeoutMs: number,
  ) {
    this.client = new taskcluster.Queue({
      rootUrl,
      timeout: timeoutMs,
      retries: CLIENT_RETRIES,
      // The client's shared agent opens a connection per request; a private
      // keep-alive agent saves a handshake on every call to the same host.
      agent: { keepAlive: true, maxSockets: 64 },
      credentials: {},
    });
  }

  /**
   * Closes the keep-alive connections. The client creates its agents from
   * the `agent` options and keeps them in `_httpAgent` (client.js); there is
   * no public way to reach them.
   */
  close(): void {
    const agents = (this.client as unknown as { _httpAgent?: { http?: { destroy(): void }; https?: { destroy(): void } } })._httpAgent;
    agents?.http?.destroy();
    agents?.https?.destroy();
  }

  async task(taskId: string): Promise<TaskDefinition> {
    const body = await this.call(`task ${taskId}`, () => this.client.task(taskId));
    const task = parseAnswer(taskSchema, body, `task ${taskId}`);
    return { taskGroupId: task.taskGroupId, source: task.metadata?.source };
  }

  /** The run's state and resolution time, for jobs whose message does not carry them. */
  async runStatus(taskId: string, runId: number): Promise<RunStatus | undefined> {
    const body = await this.call(`status of task ${taskId}`, () => this.client.status(taskId));
    const run = parseAnswer(statusSchema, body, `status of task ${taskId}`).status.runs.find((r) => r.runId === runId);
    return run && { state: run.state, resolved: run.resolved };
  }

  /** Every artifact of the run, following continuationToken. */
  async listArtifacts(taskId: string, runId: number): Promise<ArtifactEntry[]> {
    const what = `artifacts of task ${taskId} run ${runId}`;
    const artifacts: ArtifactEntry[] = [];
    let continuationToken: string | undefined;
    for (let page = 0; page < MAX_ARTIFACT_PAGES; page++) {
      const body = await this.call(what, () => this.client.listArtifacts(taskId, runId, continuationToken ? { continuationToken } : {}));
      const answer = parseAnswer(artifactListSchema, body, what);
      artifacts.push(...answer.artifacts.map(({ name, storageType, expires }) => ({ name, storageType, expires })));
      continuationToken = answer.continuationToken;
      if (!continuationToken) return artifacts;
    }
    throw new PermanentJobError(`${what}: the listing did not end after ${MAX_ARTIFACT_PAGES} pages`);
  }

  /** getArtifact's URL; the client encodes `/` in names as %2F, as Taskcluster's own clients do. */
  artifactUrl(taskId: string, runId: number, name: string): string {
    return this.client.buildUrl(this.client.getArtifact, taskId, runId, name);
  }

  /**
   * An artifact's content: getArtifact answers 303 to the storage server,
   * which fetch follows (and un-gzips, as generic-worker uploads gzipped).
   */
  async artifactText(taskId: string, runId: number, name: string): Promise<string> {
    const url = this.artifactUrl(taskId, runId, name);
    const what = `artifact ${name} of task ${taskId} run ${runId}`;
    let response: Response;
    try {
      response = await fetch(url, { redirect: "follow", signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new Error(`${what}: ${describeFetchError(error)}`);
    }
    if (!response.ok) {
      const detail = await response.text().then(errorDetail, () => "");
      throw classifyStatus(response.status, `${what}: HTTP ${response.status}${detail}`);
    }
    return readBounded(response, what);
  }

  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const tcError = error as TaskclusterError;
      if (typeof tcError.statusCode === "number") {
        const code = tcError.code && tcError.code !== "UnknownError" ? ` ${tcError.code}` : "";
        throw classifyStatus(tcError.statusCode, `${what}: HTTP ${tcError.statusCode}${code} from ${this.rootUrl}${errorDetail(tcError.message)}`);
      }
      throw new Error(`${what}: ${tcError.message || String(error)} (${this.rootUrl})`);
    }
  }
}

/**
 * 4xx answers are permanent for this job, except 408 and 429 (slow down,
 * try later); everything else (5xx, odd statuses) may heal.
 */
export function classifyStatus(status: number, message: string): Error {
  const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
  return permanent ? new PermanentJobError(message) : new Error(message);
}

function parseAnswer<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const result = schema.safeParse(body);
  // An answer of the wrong shape is most likely a proxy or an outage page: retry.
  if (!result.success) throw new Error(`${what}: unexpected answer from the Queue API (${result.error.issues[0]?.path.join(".") || "body"}: ${result.error.issues[0]?.message})`);
  return result.data;
}

/** The first line of a Taskcluster error message (they append a long markdown block). */
function errorDetail(text: string): string {
  let message = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // not JSON: use the text itself
  }
  const line = message.split("\n")[0]?.trim().slice(0, 200);
  return line ? `: ${line}` : "";
}

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED, "other side closed", ...) is its cause. */
export function describeFetchError(error: unknown): string {
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) return "request timed out";
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message) return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
  return cause?.code ?? (error as Error)?.message ?? String(error);
}

async function readBounded(response: Response, what: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > MAX_ARTIFACT_BYTES) throw new PermanentJobError(`${what}: ${declared} bytes is more than the ${MAX_ARTIFACT_BYTES} we accept`);
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > MAX_ARTIFACT_BYTES) throw new PermanentJobError(`${what}: more than the ${MAX_ARTIFACT_BYTES} bytes we accept`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof PermanentJobError) throw error;
    throw new Error(`${what}: download broke off: ${describeFetchError(error)}`);
  }
  return new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(chunks));
}
