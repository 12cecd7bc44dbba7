/**
 * A stand-in for a Taskcluster deployment: the Queue API
 * (`<rootUrl>/api/queue/v1/...`) and a second "storage" server that the
 * Queue API redirects artifact downloads to, in the documented formats
 * (test/fixtures/formats/taskcluster-queue-api/: task definition, status,
 * paged artifact listing with continuationToken, getArtifact's 303 with
 * x-taskcluster-artifact-storage-type, 424 for error artifacts, error bodies
 * `{code, message, requestInfo}`), listTaskGroup in pages with
 * continuationToken. Artifacts are served gzip-encoded, as
 * generic-worker uploads them, so clients must decode as they do for real.
 *
 * Configurable: latency per request (both servers), artifact page size, and
 * scripted failures (`failNext`: an HTTP status, optionally with a Location
 * and a raw body, or a connection reset, for the next N matching requests).
 * `reference` artifacts redirect wherever their `url` says, as Taskcluster's
 * do. Every request is recorded in `requests`.
 *
 * Lifecycle: startQueueApiStandIn() → addTask()… → close().
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";

export interface StandInArtifact {
  name: string;
  /** Served by the storage server (JSON values are serialized). */
  content?: unknown;
  contentType?: string;
  /**
   * s3 (default); error: the worker could not upload it (getArtifact answers
   * 424); reference: getArtifact redirects to `url`, wherever that is.
   */
  storageType?: "s3" | "error" | "reference";
  /** The URL of a reference artifact. */
  url?: string;
  /** ISO time; defaults to a year from now. */
  expires?: string;
}

export interface StandInRun {
  runId: number;
  state: "completed" | "failed" | "exception" | "running" | "pending";
  resolved?: string;
  artifacts: StandInArtifact[];
}

export interface StandInTask {
  taskId: string;
  /** The task definition (task.json), as the Queue API's `task` answers it. */
  definition: Record<string, unknown>;
  runs: StandInRun[];
}

export interface ScriptedFailure {
  /** Matched against the request path (as sent, encoded). */
  path: RegExp;
  /** An HTTP status to answer, or "reset" to destroy the connection. */
  status: number | "reset";
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Which server: the Queue API (default) or storage. */
  server?: "queue" | "storage";
  /** A 3xx status's Location. */
  location?: string;
  /** A raw body to answer instead of the Queue API's error shape. */
  body?: string;
}

export interface RecordedRequest {
  server: "queue" | "storage";
  method: string;
  path: string;
}

export interface QueueApiStandIn {
  /** Root URL of the deployment (no trailing slash). */
  rootUrl: string;
  storageUrl: string;
  latencyMs: number;
  /** Artifacts per listArtifacts page (the real limit is 1000). */
  pageSize: number;
  /** Tasks per listTaskGroup page (the real limit is 1000; it may answer fewer). */
  taskGroupPageSize: number;
  readonly requests: RecordedRequest[];
  addTask(task: StandInTask): void;
  removeArtifact(taskId: string, runId: number, name: string): void;
  failNext(failure: ScriptedFailure): void;
  /** Requests so far whose path matches. */
  count(path: RegExp, server?: "queue" | "storage"): number;
  close(): Promise<void>;
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

export async function startQueueApiStandIn(options: { latencyMs?: number; pageSize?: number; taskGroupPageSize?: number } = {}): Promise<QueueApiStandIn> {
  const tasks = new Map<string, StandInTask>();
  const failures: Array<Required<ScriptedFailure>> = [];
  const requests: RecordedRequest[] = [];

  const state: QueueApiStandIn = {
    rootUrl: "",
    storageUrl: "",
    latencyMs: options.latencyMs ?? 0,
    pageSize: options.pageSize ?? 1000,
    taskGroupPageSize: options.taskGroupPageSize ?? 1000,
    requests,
    addTask: (task) => void tasks.set(task.taskId, structuredClone(task)),
    removeArtifact(taskId, runId, name) {
      const run = tasks.get(taskId)?.runs.find((r) => r.runId === runId);
      if (run) run.artifacts = run.artifacts.filter((a) => a.name !== name);
    },
    failNext: (failure) => void failures.push({ times: 1, server: "queue", location: "", body: "", ...failure }),
    count: (path, server) => requests.filter((r) => path.test(r.path) && (!server || r.server === server)).length,
    close: async () => {
      await Promise.all(
        [queue, storage].map((server) => {
          server.closeAllConnections();
          return new Promise<void>((resolve) => server.close(() => resolve()));
        }),
      );
    },
  };

  const handle =
    (server: "queue" | "storage", route: (req: IncomingMessage, res: ServerResponse, path: string) => void) => (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? "/";
      requests.push({ server, method: req.method ?? "GET", path });
      const failure = failures.find((f) => f.server === server && f.path.test(path) && f.times > 0);
      if (failure) failure.times--;
      setTimeout(() => {
        if (failure?.status === "reset") return void req.socket.destroy();
        if (failure?.location || failure?.body) {
          res.writeHead(failure.status as number, {
            "content-type": "application/json; charset=utf-8",
            ...(failure.location ? { location: failure.location } : {}),
          });
          return void res.end(failure.body);
        }
        if (failure)
          return void sendError(
            res,
            failure.status as number,
            failure.status >= 500 ? "InternalServerError" : "ScriptedFailure",
            "scripted failure of the stand-in",
          );
        try {
          route(req, res, path);
        } catch (error) {
          sendError(res, 500, "InternalServerError", String(error));
        }
      }, state.latencyMs);
    };

  const queue = createServer(
    handle("queue", (req, res, rawPath) => {
      const url = new URL(rawPath, "http://stand-in");
      const group = /^\/api\/queue\/v1\/task-group\/([^/]+)\/list$/.exec(url.pathname);
      if (req.method === "GET" && group)
        return listTaskGroup(res, decodeURIComponent(group[1]!), url.searchParams.get("continuationToken"), Number(url.searchParams.get("limit") ?? 1000));
      const match = /^\/api\/queue\/v1\/task\/([^/]+)(?:\/(status)|\/runs\/(\d+)\/artifacts(?:\/(.+))?)?$/.exec(url.pathname);
      if (req.method !== "GET" || !match) return sendError(res, 404, "ResourceNotFound", `No such route ${url.pathname}`);
      const [, taskId, status, runIdText, encodedName] = match;
      const task = tasks.get(decodeURIComponent(taskId!));
      if (!task) return sendError(res, 404, "ResourceNotFound", `Task ${taskId} not found`);
      if (status) return sendJson(res, 200, { status: taskStatus(task) });
      if (runIdText === undefined) return sendJson(res, 200, task.definition);
      const run = task.runs.find((r) => r.runId === Number(runIdText));
      if (!run) return sendError(res, 404, "ResourceNotFound", `Run ${runIdText} of task ${taskId} not found`);
      if (encodedName === undefined)
        return listArtifacts(res, run, url.searchParams.get("continuationToken"), Number(url.searchParams.get("limit") ?? state.pageSize));
      // The clients send `/` as %2F; raw slashes work too (route `{*name}`).
      const name = decodeURIComponent(encodedName);
      const artifact = run.artifacts.find((a) => a.name === name);
      if (!artifact) return sendError(res, 404, "ResourceNotFound", "Artifact not found");
      if (artifact.storageType === "error")
        return sendJson(res, 424, { reason: "file-missing-on-worker", message: `Could not read file '/builds/worker/artifacts/${name}'` });
      const storageType = artifact.storageType === "reference" ? "reference" : "s3";
      const location = artifact.storageType === "reference" ? artifact.url! : `${state.storageUrl}/${task.taskId}/${run.runId}/${name}`;
      res.writeHead(303, { location, "x-taskcluster-artifact-storage-type": storageType, "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ storageType, url: location }));
    }),
  );

  const storage = createServer(
    handle("storage", (_req, res, rawPath) => {
      const match = /^\/([^/]+)\/(\d+)\/(.+)$/.exec(decodeURIComponent(new URL(rawPath, "http://stand-in").pathname));
      const artifact =
        match &&
        tasks
          .get(match[1]!)
          ?.runs.find((r) => r.runId === Number(match[2]))
          ?.artifacts.find((a) => a.name === match[3]);
      if (!artifact || artifact.storageType === "error") {
        res.writeHead(404, { "content-type": "application/xml" });
        return void res.end("<Error><Code>NoSuchKey</Code></Error>");
      }
      const text = typeof artifact.content === "string" || Buffer.isBuffer(artifact.content) ? artifact.content : JSON.stringify(artifact.content ?? null);
      res.writeHead(200, { "content-type": artifact.contentType ?? "application/json", "content-encoding": "gzip" });
      res.end(gzipSync(text));
    }),
  );

  function listArtifacts(res: ServerResponse, run: StandInRun, token: string | null, limit: number) {
    const start = token ? Number(Buffer.from(token, "base64url").toString()) : 0;
    const page = run.artifacts.slice(start, start + Math.max(1, Math.min(limit, state.pageSize)));
    const next = start + page.length;
    sendJson(res, 200, {
      artifacts: page.map((a) => ({
        storageType: a.storageType ?? "s3",
        name: a.name,
        expires: a.expires ?? new Date(Date.now() + YEAR_MS).toISOString(),
        contentType: a.contentType ?? "application/json",
      })),
      ...(next < run.artifacts.length ? { continuationToken: Buffer.from(String(next)).toString("base64url") } : {}),
    });
  }

  function listTaskGroup(res: ServerResponse, taskGroupId: string, token: string | null, limit: number) {
    const members = [...tasks.values()].filter((task) => ((task.definition.taskGroupId as string | undefined) ?? task.taskId) === taskGroupId);
    const start = token ? Number(Buffer.from(token, "base64url").toString()) : 0;
    const page = members.slice(start, start + Math.max(1, Math.min(limit || 1000, state.taskGroupPageSize)));
    const next = start + page.length;
    sendJson(res, 200, {
      taskGroupId,
      tasks: page.map((task) => ({ status: taskStatus(task), task: task.definition })),
      ...(next < members.length ? { continuationToken: Buffer.from(String(next)).toString("base64url") } : {}),
    });
  }

  for (const server of [queue, storage]) {
    server.keepAliveTimeout = 5_000;
    server.on("error", () => {});
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
  }
  state.rootUrl = `http://127.0.0.1:${(queue.address() as AddressInfo).port}`;
  state.storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;
  return state;
}

function taskStatus(task: StandInTask) {
  const definition = task.definition as {
    taskGroupId?: string;
    provisionerId?: string;
    workerType?: string;
    schedulerId?: string;
    deadline?: string;
    expires?: string;
  };
  const last = task.runs.at(-1);
  return {
    taskId: task.taskId,
    provisionerId: definition.provisionerId ?? "gecko-3",
    workerType: definition.workerType ?? "b-linux-gcp",
    taskQueueId: `${definition.provisionerId ?? "gecko-3"}/${definition.workerType ?? "b-linux-gcp"}`,
    schedulerId: definition.schedulerId ?? "gecko-level-3",
    projectId: "none",
    taskGroupId: definition.taskGroupId ?? task.taskId,
    deadline: definition.deadline ?? new Date().toISOString(),
    expires: definition.expires ?? new Date(Date.now() + YEAR_MS).toISOString(),
    retriesLeft: 5,
    state: last?.state ?? "pending",
    runs: task.runs.map((run) => ({
      runId: run.runId,
      state: run.state,
      reasonCreated: "scheduled",
      ...(run.resolved ? { reasonResolved: run.state === "completed" ? "completed" : "failed", resolved: run.resolved } : {}),
      scheduled: run.resolved ?? new Date().toISOString(),
    })),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}

/** The Queue API's error shape (libraries/api express-error.js). */
function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const time = new Date().toISOString();
  sendJson(res, status, {
    code,
    message: `${message}\n\n---\n\n* errorCode:  ${code}\n* statusCode: ${status}\n* time:       ${time}`,
    requestInfo: { method: "stand-in", params: {}, payload: {}, time },
  });
}
