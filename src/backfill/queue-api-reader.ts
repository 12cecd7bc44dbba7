/**
 * The three read-only Queue API calls backfill needs (`task`, `status`,
 * `listTaskGroup`), over guarded HTTP: only the deployment's own root URL
 * (a configured one: TASKCLUSTER_ROOT_URL or a TC_EXTRA_SOURCES entry), no
 * redirects (the Queue API answers these calls itself), a byte cap on every
 * answer, and errors that name the status and path, never a body's text.
 * The pools' client (src/jobs/tc-ingest/queue-api.ts) stays theirs.
 */
import { z } from "zod";
import { PermanentError } from "../core/permanent-error.ts";
import { discard, guardedFetch, type HostPolicy, readCapped, showUrl } from "../http/guarded-fetch.ts";

/** A listTaskGroup page of 1,000 task definitions is a few MB; this bounds a hostile or broken answer. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** A guard against a listing that never ends (a buggy server, a token loop): 10 million tasks. */
const MAX_GROUP_PAGES = 10_000;
/** Tries of one request when it fails transiently, and the first pause between them (doubled each time). */
const ATTEMPTS = 4;
const RETRY_DELAY_MS = 250;

const run = z.looseObject({
  runId: z.number().int().min(0).max(1000),
  state: z.string(),
  resolved: z.string().optional(),
  workerGroup: z.string().optional(),
  workerId: z.string().optional(),
});

export const taskStatusSchema = z.looseObject({
  taskId: z.string(),
  taskGroupId: z.string(),
  provisionerId: z.string().optional(),
  workerType: z.string().optional(),
  schedulerId: z.string().optional(),
  state: z.string().optional(),
  runs: z.array(run).default([]),
});
export type TaskStatus = z.output<typeof taskStatusSchema>;

export const taskDefinitionSchema = z.looseObject({
  routes: z.array(z.string()).default([]),
  tags: z.record(z.string(), z.unknown()).default({}),
});
export type TaskDefinition = z.output<typeof taskDefinitionSchema>;

const listTaskGroupSchema = z.looseObject({
  tasks: z.array(z.looseObject({ status: taskStatusSchema, task: taskDefinitionSchema })),
  continuationToken: z.string().min(1).optional(),
});

export interface TaskGroupMember {
  status: TaskStatus;
  task: TaskDefinition;
}

export class QueueApiReader {
  private readonly policy: HostPolicy;

  constructor(
    readonly rootUrl: string,
    private readonly timeoutMs: number,
  ) {
    const root = new URL(rootUrl);
    this.policy = { hosts: [root.host.toLowerCase()], describe: `the deployment's host (${root.host})`, allowHttp: root.protocol === "http:" };
  }

  async task(taskId: string): Promise<TaskDefinition> {
    return this.get(`task/${encodeURIComponent(taskId)}`, taskDefinitionSchema, `task ${taskId}`);
  }

  async status(taskId: string): Promise<TaskStatus> {
    const answer = await this.get(`task/${encodeURIComponent(taskId)}/status`, z.looseObject({ status: taskStatusSchema }), `status of task ${taskId}`);
    return answer.status;
  }

  /** Every member of the group, one page at a time, following continuationToken to the end. */
  async *listTaskGroup(taskGroupId: string, limit = 1000): AsyncGenerator<TaskGroupMember[]> {
    let continuationToken: string | undefined;
    for (let page = 0; page < MAX_GROUP_PAGES; page++) {
      const query = new URLSearchParams({ limit: String(limit), ...(continuationToken ? { continuationToken } : {}) });
      const answer = await this.get(`task-group/${encodeURIComponent(taskGroupId)}/list?${query}`, listTaskGroupSchema, `task group ${taskGroupId}`);
      yield answer.tasks;
      continuationToken = answer.continuationToken;
      if (!continuationToken) return;
    }
    throw new Error(`task group ${taskGroupId}: the listing did not end after ${MAX_GROUP_PAGES} pages`);
  }

  /**
   * Transient failures (network, timeouts, 5xx, 429) are tried again a few
   * times with a growing pause, as taskcluster-client does: one 502 must not
   * end a listing of thousands of tasks. Answers retrying cannot change
   * (4xx) end it at once.
   */
  private async get<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.output<S>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.getOnce(path, schema, what);
      } catch (error) {
        if (error instanceof PermanentError || attempt >= ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * 2 ** (attempt - 1)));
      }
    }
  }

  private async getOnce<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.output<S>> {
    const url = `${this.rootUrl}/api/queue/v1/${path}`;
    const response = await guardedFetch(url, {
      policy: this.policy,
      signal: AbortSignal.timeout(this.timeoutMs),
      what,
      maxRedirects: 0,
      headers: { accept: "application/json" },
    });
    if (response.status < 200 || response.status >= 300) {
      discard(response.message);
      const message = `${what}: HTTP ${response.status} from ${showUrl(response.url)}`;
      if (response.status === 404) throw new PermanentError(`${what}: not found at ${this.rootUrl} (HTTP 404)`);
      throw response.status >= 400 && response.status < 500 && response.status !== 429 ? new PermanentError(message) : new Error(message);
    }
    const bytes = await readCapped(response, MAX_ANSWER_BYTES, what, "the Queue API answer limit");
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new Error(`${what}: the Queue API did not answer JSON (${showUrl(response.url)})`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${what}: unexpected answer from the Queue API (${issue?.path.join(".") || "body"}: ${issue?.message})`);
    }
    return parsed.data;
  }
}
