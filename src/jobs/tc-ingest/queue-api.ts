/**
 * The Taskcluster Queue API as tc-ingest needs it: a task's definition, a
 * run's artifacts (every page), and an artifact's content behind its 303.
 *
 * Calls go through the official taskcluster-client (one client per root URL,
 * so several deployments can feed us side by side). It never follows
 * redirects itself (got's `followRedirect: false` in its makeRequest), so
 * those calls stay on the root URL's host. It retries 5xx and network errors
 * a few times; what is still failing afterwards (and 429, which it does not
 * retry) is thrown as an ordinary error and BullMQ retries the job with its
 * backoff. Answers that retrying cannot change (404, 403, 410, ...) become
 * PermanentError.
 *
 * Artifact downloads follow getArtifact's 303 by hand, only to the
 * Taskcluster hosts (see taskcluster-hosts.ts), and read at most a byte cap.
 * No error message carries text from an answer's body: status, Taskcluster
 * error code (from a fixed list), host and path at most.
 */
import taskcluster, { type QueueClient, type TaskclusterError } from "taskcluster-client";
import { z } from "zod";
import { PermanentError } from "../../core/permanent-error.ts";
import { inSpan } from "../../core/tracing.ts";
import { describeFetchError, discard, guardedFetch, readCapped, showUrl } from "../../http/guarded-fetch.ts";
import { TaskclusterHosts } from "../../http/taskcluster-hosts.ts";

/** In-client retries: quick blips only; longer outages are BullMQ's backoff. */
const CLIENT_RETRIES = 2;
/** A guard against a listing that never ends (a buggy server, a token loop). */
const MAX_ARTIFACT_PAGES = 200;
/** Without a configured cap (ELMO_JSON_MAX_BYTES), artifacts are read up to this many bytes. */
const DEFAULT_MAX_ARTIFACT_BYTES = 4 * 1024 * 1024;

/** Error codes of Taskcluster's API library: safe to repeat, they are not free text. */
const TASKCLUSTER_ERROR_CODES = new Set([
  "MalformedPayload",
  "InvalidRequestArguments",
  "InputValidationError",
  "InputError",
  "AuthenticationFailed",
  "InsufficientScopes",
  "ResourceNotFound",
  "RequestConflict",
  "ResourceExpired",
  "InvalidResourceRequest",
  "InternalServerError",
  "TooManyRequests",
]);

export interface QueueApiOptions {
  /** The hosts artifact downloads may go to; default: the root URL's host only. */
  hosts?: TaskclusterHosts;
  /** Largest artifact (decoded) artifactText reads; default DEFAULT_MAX_ARTIFACT_BYTES. */
  maxArtifactBytes?: number;
  /** The variable that sets maxArtifactBytes, named in refusals. */
  maxArtifactBytesName?: string;
}

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
// metadata is required by Taskcluster's task schema; requiring it here also
// tells a task definition from any other JSON (a redirect's body, say).
const taskSchema = z.looseObject({
  taskGroupId: z.string().optional(),
  metadata: z.looseObject({ source: z.string().optional() }),
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
  private readonly hosts: TaskclusterHosts;
  private readonly maxArtifactBytes: number;
  private readonly maxArtifactBytesName: string;

  constructor(
    readonly rootUrl: string,
    private readonly timeoutMs: number,
    options: QueueApiOptions = {},
  ) {
    this.hosts = options.hosts ?? new TaskclusterHosts([rootUrl], []);
    this.maxArtifactBytes = options.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
    this.maxArtifactBytesName = options.maxArtifactBytesName ?? "the artifact size limit";
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
    const body = await this.call("task", taskId, `task ${taskId}`, () => this.client.task(taskId));
    const task = parseAnswer(taskSchema, body, `task ${taskId}`);
    return { taskGroupId: task.taskGroupId, source: task.metadata.source };
  }

  /** The run's state and resolution time, for jobs whose message does not carry them. */
  async runStatus(taskId: string, runId: number): Promise<RunStatus | undefined> {
    const body = await this.call("status", taskId, `status of task ${taskId}`, () => this.client.status(taskId));
    const run = parseAnswer(statusSchema, body, `status of task ${taskId}`).status.runs.find((r) => r.runId === runId);
    return run && { state: run.state, resolved: run.resolved };
  }

  /** Every artifact of the run, following continuationToken. */
  async listArtifacts(taskId: string, runId: number): Promise<ArtifactEntry[]> {
    const what = `artifacts of task ${taskId} run ${runId}`;
    const artifacts: ArtifactEntry[] = [];
    let continuationToken: string | undefined;
    for (let page = 0; page < MAX_ARTIFACT_PAGES; page++) {
      const body = await this.call("listArtifacts", taskId, what, () =>
        this.client.listArtifacts(taskId, runId, continuationToken ? { continuationToken } : {}),
      );
      const answer = parseAnswer(artifactListSchema, body, what);
      artifacts.push(...answer.artifacts.map(({ name, storageType, expires }) => ({ name, storageType, expires })));
      continuationToken = answer.continuationToken;
      if (!continuationToken) return artifacts;
    }
    throw new PermanentError(`${what}: the listing did not end after ${MAX_ARTIFACT_PAGES} pages`);
  }

  /** getArtifact's URL; the client encodes `/` in names as %2F, as Taskcluster's own clients do. */
  artifactUrl(taskId: string, runId: number, name: string): string {
    return this.client.buildUrl(this.client.getArtifact, taskId, runId, name);
  }

  /**
   * An artifact's content: getArtifact answers 303 to the storage server;
   * the redirect is followed only to a Taskcluster host, and the gzip
   * Content-Encoding generic-worker uploads with is undone as the bytes
   * arrive, counted against the cap (ELMO_JSON_MAX_BYTES for the pool).
   */
  artifactText(taskId: string, runId: number, name: string): Promise<string> {
    return inSpan(
      "Queue API getArtifact",
      this.spanAttributes(taskId, { "taskcluster.artifact": name }),
      () => this.readArtifact(taskId, runId, name),
      "client",
    );
  }

  private async readArtifact(taskId: string, runId: number, name: string): Promise<string> {
    const what = `artifact ${name} of task ${taskId} run ${runId}`;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const response = await guardedFetch(this.artifactUrl(taskId, runId, name), { policy: this.hosts.policyFor(this.rootUrl), signal, what });
    if (response.status < 200 || response.status >= 300) {
      discard(response.message);
      throw classifyStatus(response.status, `${what}: HTTP ${response.status} from ${showUrl(response.url)}`);
    }
    const bytes = await readCapped(response, this.maxArtifactBytes, what, this.maxArtifactBytesName);
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  }

  private spanAttributes(taskId: string, more: Record<string, string> = {}): Record<string, string> {
    return { "taskcluster.root_url": this.rootUrl, "taskcluster.task_id": taskId, ...more };
  }

  /** One Queue API method call (`operation`), in a span when traces are on. */
  private call<T>(operation: string, taskId: string, what: string, request: () => Promise<T>): Promise<T> {
    return inSpan(`Queue API ${operation}`, this.spanAttributes(taskId), () => this.request(what, request), "client");
  }

  private async request<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const tcError = error as TaskclusterError;
      if (typeof tcError.statusCode === "number" && tcError.statusCode < 400) {
        // A 2xx whose body would not parse, or a 3xx the client did not follow: a proxy, an outage page.
        throw new Error(`${what}: unexpected answer from the Queue API (HTTP ${tcError.statusCode}) from ${this.rootUrl}`);
      }
      if (typeof tcError.statusCode === "number") {
        const code = tcError.code && TASKCLUSTER_ERROR_CODES.has(tcError.code) ? ` ${tcError.code}` : "";
        throw classifyStatus(tcError.statusCode, `${what}: HTTP ${tcError.statusCode}${code} from ${this.rootUrl}`);
      }
      throw new Error(`${what}: ${describeClientError(tcError)} (${this.rootUrl})`);
    }
  }
}

/**
 * 4xx answers are permanent for this job, except 408 and 429 (slow down,
 * try later); everything else (5xx, odd statuses) may heal.
 */
function classifyStatus(status: number, message: string): Error {
  const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
  return permanent ? new PermanentError(message) : new Error(message);
}

function parseAnswer<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const result = schema.safeParse(body);
  // An answer of the wrong shape is most likely a proxy or an outage page: retry.
  if (!result.success)
    throw new Error(`${what}: unexpected answer from the Queue API (${result.error.issues[0]?.path.join(".") || "body"}: ${result.error.issues[0]?.message})`);
  return result.data;
}

/**
 * A failure without an HTTP answer: got's timeout and network errors carry a
 * code; anything else (e.g. the client's JSON.parse of a body, whose message
 * quotes the body) is reported by its class only.
 */
function describeClientError(error: TaskclusterError & { name?: string }): string {
  if (error?.name === "TimeoutError" || error?.code === "ECONNABORTED" || error?.code === "ETIMEDOUT") return "request timed out";
  if (typeof error?.code === "string" && /^E[A-Z0-9_]{2,40}$/.test(error.code)) return error.code;
  if (error instanceof SyntaxError) return "the answer is not valid JSON";
  return describeFetchError(error);
}
