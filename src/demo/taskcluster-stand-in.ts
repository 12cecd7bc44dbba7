/**
 * A local stand-in for a Taskcluster deployment, for the demo: the Queue API
 * routes tc-ingest uses (task, status, listArtifacts, getArtifact's 303) and
 * the storage it redirects to, serving a compare-locales run's elmo.json and
 * detail artifacts. Shapes follow the Queue API's documented responses.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface DemoTask {
  taskId: string;
  taskGroupId: string;
  /** metadata.source of the task definition. */
  source: string;
  /** Artifact name → JSON content. */
  artifacts: Record<string, unknown>;
}

/** A Taskcluster slugid (22 characters of url-safe base64, v4 bits set as slugid.nice() does). */
export function slugid(): string {
  const bytes = randomBytes(16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("base64url").slice(0, 22);
}

export class TaskclusterStandIn {
  private readonly tasks = new Map<string, DemoTask>();
  private server: Server | undefined;
  rootUrl = "";

  addTask(task: DemoTask): void {
    this.tasks.set(task.taskId, task);
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const pathname = new URL(request.url ?? "/", "http://stand-in").pathname;
      const storage = /^\/storage\/([^/]+)\/0\/(.+)$/.exec(pathname);
      if (storage) {
        const content = this.tasks.get(storage[1]!)?.artifacts[decodeURIComponent(storage[2]!)];
        return content === undefined ? json(response, 404, { code: "ResourceNotFound", message: "no such artifact" }) : json(response, 200, content);
      }
      const match = /^\/api\/queue\/v1\/task\/([^/]+)(?:\/(status)|\/runs\/0\/artifacts(?:\/(.+))?)?$/.exec(pathname);
      const task = match && this.tasks.get(match[1]!);
      if (!match || !task) return json(response, 404, { code: "ResourceNotFound", message: `no such route or task: ${pathname}` });
      if (match[2]) return json(response, 200, { status: status(task) });
      if (match[3] !== undefined) {
        const name = decodeURIComponent(match[3]);
        if (!(name in task.artifacts)) return json(response, 404, { code: "ResourceNotFound", message: "Artifact not found" });
        const location = `${this.rootUrl}/storage/${task.taskId}/0/${name}`;
        response.writeHead(303, { location, "x-taskcluster-artifact-storage-type": "s3", "content-type": "application/json" });
        return void response.end(JSON.stringify({ storageType: "s3", url: location }));
      }
      if (pathname.endsWith("/artifacts")) {
        const expires = new Date(Date.now() + 365 * 24 * 3600_000).toISOString();
        return json(response, 200, { artifacts: Object.keys(task.artifacts).map((name) => ({ storageType: "s3", name, expires, contentType: "application/json" })) });
      }
      return json(response, 200, definition(task));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.rootUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(JSON.stringify(body));
}

function times() {
  const created = new Date(Date.now() - 10 * 60_000);
  return { created: created.toISOString(), deadline: new Date(created.getTime() + 24 * 3600_000).toISOString(), expires: new Date(created.getTime() + 90 * 24 * 3600_000).toISOString() };
}

/** Where a task ran: the fields its definition and its status share. */
function placement(task: DemoTask) {
  return {
    provisionerId: "gecko-3",
    workerType: "b-linux-gcp",
    taskQueueId: "gecko-3/b-linux-gcp",
    schedulerId: "gecko-level-3",
    projectId: "none",
    taskGroupId: task.taskGroupId,
  };
}

function definition(task: DemoTask) {
  return {
    ...placement(task),
    dependencies: [task.taskGroupId],
    requires: "all-completed",
    routes: ["project.l10n.elmo.v1"],
    priority: "low",
    retries: 5,
    ...times(),
    scopes: [],
    payload: { command: [["compare-locales", "--json", "compares/browser.json", "_configs/browser.toml", "l10n-central", "de", "fr"]], maxRunTime: 1800 },
    metadata: { owner: "demo@example.org", source: task.source, name: "l10n-compare-locales", description: "compare-locales for the demo" },
    tags: { kind: "l10n" },
    extra: {},
  };
}

function status(task: DemoTask) {
  const { deadline, expires } = times();
  const resolved = new Date().toISOString();
  return {
    taskId: task.taskId,
    ...placement(task),
    deadline,
    expires,
    retriesLeft: 5,
    state: "completed",
    runs: [{ runId: 0, state: "completed", reasonCreated: "scheduled", reasonResolved: "completed", workerGroup: "demo", workerId: "demo-1", takenUntil: resolved, scheduled: resolved, started: resolved, resolved }],
  };
}
