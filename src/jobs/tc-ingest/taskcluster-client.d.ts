/**
 * The part of taskcluster-client (v55, CommonJS, ships no types) that
 * tc-ingest and the artifact links use. Shapes follow the Queue API reference
 * (formats/taskcluster-queue-api/queue-api-reference.json); responses are
 * still validated where they are read, since upstream schemas grow.
 */
declare module "taskcluster-client" {
  export interface ClientOptions {
    rootUrl: string;
    /** Timeout of one HTTP request, ms (default 30 s). */
    timeout?: number;
    /** Retries after the first try, for 5xx and network errors only (default 5). */
    retries?: number;
    /** Retry delay is 2^attempt × delayFactor ms (default 100). */
    delayFactor?: number;
    maxDelay?: number;
    /** Options of a private http(s).Agent; without it a shared agent without keep-alive is used. */
    agent?: import("node:http").AgentOptions;
    credentials?: { clientId?: string; accessToken?: string; certificate?: string };
  }

  /**
   * What the client throws for an HTTP error answer (network errors are the
   * underlying got errors, without statusCode).
   */
  export interface TaskclusterError extends Error {
    statusCode?: number;
    code?: string;
    body?: unknown;
  }

  type ApiMethod<A extends unknown[], R> = ((...args: A) => Promise<R>) & { readonly entryReference: unknown };

  /** A Queue API client for one root URL. */
  export interface QueueClient {
    task: ApiMethod<[taskId: string], unknown>;
    status: ApiMethod<[taskId: string], unknown>;
    listArtifacts: ApiMethod<[taskId: string, runId: number | string, query?: { continuationToken?: string; limit?: number }], unknown>;
    getArtifact: ApiMethod<[taskId: string, runId: number | string, name: string], unknown>;
    /** The URL of a method call, arguments encoded as the client sends them (`/` in names as %2F). */
    buildUrl(method: ApiMethod<never[], unknown>, ...args: Array<string | number | Record<string, unknown>>): string;
  }

  // CommonJS: Node's ESM loader cannot see its exports statically, so only
  // the default import works at run time.
  const taskcluster: { Queue: new (options: ClientOptions) => QueueClient };
  export default taskcluster;
}
