/**
 * The one place that reads the environment (README, "Configuration").
 *
 * `loadConfig()` validates every variable at start, applies the defaults, and
 * throws a `ConfigError` that names the offending variable. Secrets (the
 * passwords, and credentials embedded in URLs) are never part of an error
 * message: use `redactUrl()` whenever a URL is logged.
 */
import { z } from "zod";
import { trimTrailingSlashes } from "./urls.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

/** A Taskcluster deployment that feeds us over its own Pulse vhost (e.g. community-tc). */
export interface TaskclusterSource {
  /** Short name, used in Pulse queue names and metrics labels. */
  name: string;
  /** Broker URL with credentials applied (never log it: use redactUrl). */
  pulseUrl: string;
  /** Queue API root URL of that deployment. */
  rootUrl: string;
}

export interface Config {
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  pulse: {
    /** Broker URL with PULSE_USER / PULSE_PASSWORD applied. */
    url: string;
    user: string;
    password: string;
    /** `queue/<PULSE_USER>/<PULSE_QUEUE>`; sources append `/<source>`. */
    queuePrefix: string;
    prefetch: number;
    maxLength: number;
    /**
     * x-delivery-limit of our (quorum) queues: a message delivered this many
     * times more without an ack is dead-lettered into the feed's poison queue.
     */
    deliveryLimit: number;
    /** x-max-length of the poison queues. */
    poisonMaxLength: number;
    /** Custom route bound on task-completed / task-failed, without the `route.` prefix. */
    tcRoute: string;
    /** Development only: declare the exchanges instead of checking them passively. */
    declareExchanges: boolean;
    heartbeatSeconds: number;
    /** Exchange names, with PULSE_EXCHANGE_PREFIX applied. */
    exchanges: PulseExchanges;
    /** RabbitMQ management API (with credentials), for unacked counts in /metrics; optional. */
    managementUrl: string | undefined;
  };
  taskcluster: {
    /** Root URL of the Taskcluster deployment publishing on PULSE_URL. */
    rootUrl: string;
    /** Further deployments, each with its own Pulse connection. */
    extraSources: TaskclusterSource[];
    requestTimeoutMs: number;
    /**
     * Hosts the Queue API may send artifact downloads to (besides the root
     * URLs' own hosts): `host`, `host:port` or `*.suffix`.
     */
    artifactHosts: string[];
  };
  redis: {
    /** A single server; with Sentinel or Cluster only its user, password, TLS (rediss:) and database number are used. */
    url: string;
    /** How Redis is reached: one server, a master found through Sentinel, or a Cluster (src/core/redis.ts). */
    topology: RedisTopology;
    /** BullMQ key prefix; lets several installations (or test runs) share one Redis. On Cluster it holds a hash tag (`{bull}`). */
    prefix: string;
    /** What "Redis has the job" means before the bridge acks its message (src/bridge/redis-durability.ts). */
    durability: RedisDurability;
  };
  /** poolSize: connections one process opens at most (node-postgres pool), through PgBouncer or not. */
  database: { url: string; poolSize: number };
  clones: {
    dir: string;
    allowedHosts: string[];
  };
  dashboard: {
    port: number;
    host: string;
    user: string | undefined;
    password: string | undefined;
  };
  /** The GitHub webhook receiver (`pulse-bridge webhook`; `start` runs it when the secret is set). */
  webhook: {
    port: number;
    host: string;
    /** GITHUB_WEBHOOK_SECRET: the HMAC key of X-Hub-Signature-256 (never log it). */
    secret: string | undefined;
    /** Requests with a larger body are refused (413) before their signature is checked. */
    maxBodyBytes: number;
  };
  /** The GitHub whose pushes we follow (Pulse and webhook): repository URLs are `<url>/<owner>/<repo>`. */
  github: { url: string };
  hgSync: {
    concurrency: number;
    reconcileIntervalMs: number;
    lockTtlMs: number;
  };
  tcIngest: {
    concurrency: number;
    /** elmo.json larger than this once decoded is refused (bounds a job's memory). */
    elmoJsonMaxBytes: number;
    /** elmo.json with more comparisons than this is refused (bounds a job's transaction). */
    elmoJsonMaxComparisons: number;
  };
  /** Bounds of the dead-letter queue, enforced by the bridge. */
  deadLetters: {
    maxCount: number;
    maxAgeMs: number;
  };
  /** OpenTelemetry traces (src/core/tracing.ts): off when `endpoint` is undefined. */
  tracing: { endpoint: string | undefined };
}

export interface HostAndPort {
  host: string;
  port: number;
}

export type RedisTopology =
  | { kind: "single" }
  | { kind: "sentinel"; sentinels: HostAndPort[]; master: string; password: string | undefined }
  | { kind: "cluster"; nodes: HostAndPort[] };

/**
 * REDIS_DURABILITY: `memory` (Redis accepted the add), `fsync` (Redis runs AOF
 * with appendfsync always, so an accepted add is on disk), `replicas:N` (WAIT
 * N after each turn's adds). `unchecked`: run even when Redis cannot give it.
 */
export interface RedisDurability {
  mode: "memory" | "fsync" | "replicas";
  /** replicas:N: how many replicas must have the adds before their messages are acked. */
  replicas: number;
  /** replicas:N: WAIT's timeout; fewer replicas by then counts as Redis not taking jobs. */
  waitTimeoutMs: number;
  unchecked: boolean;
}

export interface PulseExchanges {
  hgpushes: string;
  githubWebhooks: string;
  taskclusterGithubPush: string;
  taskCompleted: string;
  taskFailed: string;
}

/** The exchanges we bind, as Pulse names them (test/fixtures/formats has their messages). */
export const PULSE_EXCHANGES: PulseExchanges = {
  hgpushes: "exchange/hgpushes/v2",
  githubWebhooks: "exchange/github-webhooks/v1",
  taskclusterGithubPush: "exchange/taskcluster-github/v1/push",
  taskCompleted: "exchange/taskcluster-queue/v1/task-completed",
  taskFailed: "exchange/taskcluster-queue/v1/task-failed",
};

type Env = Record<string, string | undefined>;

/** Replaces the password of a URL (if any) with `***`. Tolerates unparseable input. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
  }
}

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const url = (protocols: string[]) =>
  z.string({ error: "is required" }).refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL with scheme ${protocols.join(" or ")}`,
  );

const booleanFlag = z
  .string()
  .toLowerCase()
  .refine((v) => ["1", "0", "true", "false", "yes", "no"].includes(v), "must be true or false")
  .transform((v) => ["1", "true", "yes"].includes(v));

/** Durations: `500ms`, `30s`, `10m`, `1h`, `30d`, or bare milliseconds. */
const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)?$/, "must be a duration like 30s, 10m, 1h or 30d")
  .transform((v) => {
    const match = /^(\d+)(ms|s|m|h|d)?$/.exec(v)!;
    const unit = { ms: 1, s: SECOND, m: MINUTE, h: 60 * MINUTE, d: 24 * 60 * MINUTE }[match[2] as "ms" | "s" | "m" | "h" | "d"] ?? 1;
    return Number(match[1]) * unit;
  });

const queueWord = z.string().regex(/^[A-Za-z0-9_.-]+$/, "may only contain letters, digits, '.', '_' and '-'");

/** `host:port,host:port`: Sentinels or Cluster seed nodes. */
const hostAndPortList = z
  .string()
  .transform((v) =>
    v
      .split(",")
      .map((entry) => entry.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, "must be a comma-separated list of host:port"))
      .min(1, "must name at least one host:port")
      .transform((entries) =>
        entries.map((entry) => {
          const colon = entry.lastIndexOf(":");
          return { host: entry.slice(0, colon), port: Number(entry.slice(colon + 1)) };
        }),
      ),
  );

const extraSourcesSchema = z.array(
  z.object({
    name: queueWord,
    pulseUrl: url(["amqp:", "amqps:"]),
    rootUrl: url(["http:", "https:"]),
  }),
);

const hostList = (entry: RegExp, message: string) =>
  z
    .string()
    .transform((v) =>
      v
        .split(",")
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(entry, message)));

/** One environment variable: how it is checked, what it is when unset, what it means (the README's table says the same). */
interface Variable<S extends z.ZodType> {
  schema: S;
  /** The value taken when the variable is unset or blank; none when it has no default (or one loadConfig derives). */
  default?: string;
  /** How the README shows the default when it is not a value of its own ("from PULSE_URL", "unset"). */
  shownDefault?: string;
  meaning: string;
  /** Never show the value in an error. */
  secret?: boolean;
}

const variable = <S extends z.ZodType>(declared: Variable<S>): Variable<S> => declared;

/** Every variable loadConfig reads, in the README's order: the only place a name, default or meaning is written. */
const VARIABLES = {
  PULSE_URL: variable({
    schema: url(["amqp:", "amqps:"]),
    default: "amqp://guest:guest@127.0.0.1:5672",
    secret: true,
    meaning: "broker URL; real Pulse is amqps://pulse.mozilla.org:5671",
  }),
  PULSE_USER: variable({
    schema: z.string({ error: "is required (or put the user in PULSE_URL)" }).regex(/^[A-Za-z0-9_.-]+$/, "may only contain letters, digits, '.', '_' and '-'"),
    shownDefault: "from PULSE_URL",
    meaning: "Pulse user; also names the queues",
  }),
  PULSE_PASSWORD: variable({ schema: z.string(), shownDefault: "from PULSE_URL", secret: true, meaning: "Pulse password (secret)" }),
  PULSE_QUEUE: variable({
    schema: queueWord,
    default: "pulse-bridge",
    meaning: "queues are queue/<PULSE_USER>/<PULSE_QUEUE>/v2/<feed>, poison queue queue/<PULSE_USER>/<PULSE_QUEUE>/poison",
  }),
  PULSE_PREFETCH: variable({ schema: integer(1, 500), default: "200", meaning: "unacked messages in flight per consumer (1-500)" }),
  PULSE_MAX_LENGTH: variable({ schema: integer(1, 10_000_000), default: "100000", meaning: "x-max-length of our queues (Pulse requires bounded queues)" }),
  PULSE_DELIVERY_LIMIT: variable({
    schema: integer(1, 1000),
    default: "10",
    meaning: "redeliveries without an ack before a message goes to the poison queue (x-delivery-limit, 1-1000)",
  }),
  PULSE_POISON_MAX_LENGTH: variable({ schema: integer(1, 1_000_000), default: "10000", meaning: "x-max-length of the poison queue" }),
  PULSE_HEARTBEAT: variable({ schema: integer(0, 600), default: "30", meaning: "AMQP heartbeat, seconds" }),
  PULSE_DECLARE_EXCHANGES: variable({ schema: booleanFlag, default: "false", meaning: "development only: declare exchanges instead of checking them" }),
  PULSE_EXCHANGE_PREFIX: variable({
    schema: z.string().regex(/^[A-Za-z0-9_./-]*$/, "may only contain letters, digits and . _ / -"),
    default: "",
    shownDefault: "(none)",
    meaning: "prefix for exchange names (local brokers, staging, tests)",
  }),
  RABBITMQ_MANAGEMENT_URL: variable({
    schema: url(["http:", "https:"]).optional(),
    shownDefault: "unset",
    secret: true,
    meaning: "RabbitMQ management API (http://user:pass@host:15672), for unacked counts in /metrics",
  }),
  TC_ROUTE: variable({
    schema: z.string().regex(/^[A-Za-z0-9_.*#-]+$/, "must be a routing-key pattern"),
    default: "project.l10n.elmo.v1",
    meaning: "custom route bound on task-completed and task-failed",
  }),
  TASKCLUSTER_ROOT_URL: variable({
    schema: url(["http:", "https:"]),
    default: "https://firefox-ci-tc.services.mozilla.com",
    meaning: "Queue API of the deployment on PULSE_URL",
  }),
  TC_EXTRA_SOURCES: variable({
    schema: z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: "custom", message: "must be a JSON array" });
          return z.NEVER;
        }
      })
      .pipe(extraSourcesSchema),
    default: "[]",
    secret: true,
    meaning: "JSON list of further deployments: [{name, pulseUrl, rootUrl}]",
  }),
  TC_REQUEST_TIMEOUT: variable({ schema: duration, default: "30s", meaning: "timeout of one Queue API request" }),
  // Where the Queue API's getArtifact sends downloads: Firefox-CI's public
  // artifact CDN (firefoxci.taskcluster-artifacts.net; the other Mozilla
  // deployments' CDNs share the domain) and Google Cloud Storage, which the
  // GCP-hosted deployments answer for private artifacts, object-service
  // downloads and requests from the bucket's own region.
  TC_ARTIFACT_HOSTS: variable({
    schema: hostList(/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?$/, "must be a comma-separated list of host names (host, host:port or *.domain)"),
    default: "*.taskcluster-artifacts.net,storage.googleapis.com",
    meaning: "hosts artifact downloads may be redirected to, besides the root URLs' hosts (host, host:port, *.domain)",
  }),
  REDIS_URL: variable({ schema: url(["redis:", "rediss:"]), default: "redis://127.0.0.1:6379", secret: true, meaning: "BullMQ's Redis" }),
  REDIS_SENTINELS: variable({
    schema: hostAndPortList.optional(),
    shownDefault: "unset",
    meaning:
      "host:port,… of Redis Sentinels: when set, every connection goes to the master they name (REDIS_URL then gives only credentials, TLS and database)",
  }),
  REDIS_SENTINEL_MASTER: variable({
    schema: z.string().regex(/^[A-Za-z0-9_.-]+$/, "must be a Sentinel master name"),
    default: "mymaster",
    meaning: "with REDIS_SENTINELS: the master's name",
  }),
  REDIS_SENTINEL_PASSWORD: variable({
    schema: z.string().optional(),
    shownDefault: "unset",
    secret: true,
    meaning: "with REDIS_SENTINELS: the sentinels' own password (secret)",
  }),
  REDIS_CLUSTER_NODES: variable({
    schema: hostAndPortList.optional(),
    shownDefault: "unset",
    meaning: "host:port,… of some Redis Cluster nodes: when set, Redis is a Cluster (REDIS_URL then gives only credentials and TLS)",
  }),
  BULLMQ_PREFIX: variable({
    schema: z.string().regex(/^(\{[A-Za-z0-9_.-]+\}|[A-Za-z0-9_.-]+)$/, "may only contain letters, digits, '.', '_' and '-', optionally inside one {hash tag}"),
    default: "bull",
    shownDefault: "bull ({bull} on Cluster)",
    meaning: "BullMQ key prefix in Redis; on Cluster it must be a {hash tag} so that each queue's keys share a slot",
  }),
  REDIS_DURABILITY: variable({
    schema: z
      .string()
      .regex(/^(memory|fsync|replicas:([1-9]|1[0-6]))$/, "must be memory, fsync or replicas:N (N 1-16)")
      .transform((v) => ({ mode: v.split(":")[0] as "memory" | "fsync" | "replicas", replicas: Number(v.split(":")[1] ?? 0) })),
    default: "fsync",
    meaning:
      "what Redis must have done with a job before the bridge acks its message: memory (accepted), fsync (AOF with appendfsync always), replicas:N (WAIT for N replicas); checked at start (see *Durable hand-off*)",
  }),
  REDIS_WAIT_TIMEOUT: variable({
    schema: duration.pipe(z.number().min(10, "must be at least 10ms")),
    default: "2s",
    meaning: "REDIS_DURABILITY=replicas:N: WAIT's timeout; fewer replicas by then pauses the bridge like a Redis outage",
  }),
  REDIS_DURABILITY_UNCHECKED: variable({
    schema: booleanFlag,
    default: "false",
    meaning: "true: the bridge runs even when Redis cannot give REDIS_DURABILITY, logging an error and pulse_bridge_redis_durability_ok 0",
  }),
  DATABASE_URL: variable({
    schema: url(["postgresql:", "postgres:"]),
    default: "postgresql://postgres@127.0.0.1:5432/pulse_bridge",
    secret: true,
    meaning: "PostgreSQL, through Prisma",
  }),
  // Every process opens one pool this size, so processes x DATABASE_POOL_SIZE must stay within
  // max_connections (or PgBouncer's max_client_conn). 10: a tc-ingest job holds one connection at a
  // time and TC_INGEST_CONCURRENCY is 8, plus room for the dashboard and hg-sync in `start`.
  DATABASE_POOL_SIZE: variable({
    schema: integer(1, 1000),
    default: "10",
    meaning: "connections one process opens at most (its pool; short commands open fewer): N processes ask for N times this (see Running on several machines)",
  }),
  CLONES_DIR: variable({ schema: z.string(), default: "./data/clones", meaning: "shared clone storage" }),
  ALLOWED_HOSTS: variable({
    schema: hostList(/^[a-z0-9.-]+(:\d+)?$/, "must be a comma-separated list of host names").pipe(z.array(z.string()).min(1, "must name at least one host")),
    default: "hg.mozilla.org,github.com",
    meaning: "hosts we clone from",
  }),
  HG_SYNC_CONCURRENCY: variable({ schema: integer(1, 64), default: "2", meaning: "default --concurrency of worker hg-sync" }),
  RECONCILE_INTERVAL: variable({ schema: duration, default: "10m", meaning: "how often every tracked repository is poked" }),
  SYNC_LOCK_TTL: variable({ schema: duration, default: "60s", meaning: "expiry of a repository's sync lock (renewed while held)" }),
  TC_INGEST_CONCURRENCY: variable({ schema: integer(1, 256), default: "8", meaning: "default --concurrency of worker tc-ingest" }),
  ELMO_JSON_MAX_BYTES: variable({
    schema: integer(1024, 64 * 1024 * 1024),
    default: String(4 * 1024 * 1024),
    meaning: "elmo.json larger than this once decoded (4 MiB) fails its job",
  }),
  ELMO_JSON_MAX_COMPARISONS: variable({ schema: integer(1, 100_000), default: "5000", meaning: "elmo.json with more comparisons fails its job" }),
  DASHBOARD_PORT: variable({ schema: integer(0, 65535), default: "3000", meaning: "dashboard HTTP port" }),
  DASHBOARD_HOST: variable({ schema: z.string(), default: "127.0.0.1", meaning: "dashboard bind address" }),
  DASHBOARD_USER: variable({ schema: z.string().optional(), shownDefault: "unset", meaning: "with DASHBOARD_PASSWORD: enables write actions in Bull Board" }),
  DASHBOARD_PASSWORD: variable({ schema: z.string().optional(), shownDefault: "unset", secret: true, meaning: "see DASHBOARD_USER (secret)" }),
  WEBHOOK_PORT: variable({ schema: integer(0, 65535), default: "3001", meaning: "GitHub webhook receiver HTTP port (`webhook` role)" }),
  WEBHOOK_HOST: variable({
    schema: z.string(),
    default: "127.0.0.1",
    meaning: "webhook receiver bind address (GitHub must reach it, e.g. through a TLS reverse proxy)",
  }),
  GITHUB_WEBHOOK_SECRET: variable({
    schema: z.string().min(16, "must be at least 16 characters (use a random secret)").optional(),
    shownDefault: "unset",
    secret: true,
    meaning: "secret of the GitHub webhook, checks X-Hub-Signature-256 (secret); `start` runs the receiver only when it is set",
  }),
  WEBHOOK_MAX_BYTES: variable({
    schema: integer(64 * 1024, 25 * 1024 * 1024),
    default: String(4 * 1024 * 1024),
    meaning: "webhook requests with a larger body (4 MiB) are refused with 413",
  }),
  GITHUB_URL: variable({
    schema: url(["http:", "https:"]),
    default: "https://github.com",
    meaning: "the GitHub whose pushes we follow (Pulse and webhook): a push names <GITHUB_URL>/<owner>/<repo>",
  }),
  DEAD_LETTER_MAX_COUNT: variable({
    schema: integer(1, 10_000_000),
    default: "10000",
    meaning: "dead letters kept; the bridge removes the oldest beyond this",
  }),
  DEAD_LETTER_MAX_AGE: variable({
    schema: duration.pipe(z.number().min(SECOND, "must be at least 1s")),
    default: "30d",
    meaning: "dead letters older than this are removed by the bridge",
  }),
  LOG_LEVEL: variable({
    schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { error: "must be one of fatal, error, warn, info, debug, trace, silent" }),
    default: "info",
    meaning: "pino log level",
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: variable({
    schema: url(["http:", "https:"]).optional(),
    shownDefault: "unset",
    meaning: "OTLP/HTTP collector (e.g. http://127.0.0.1:4318): when set, every role exports traces to <endpoint>/v1/traces (see *Traces*)",
  }),
};

type Variables = typeof VARIABLES;

/**
 * Every variable `loadConfig` reads, with its default (as the README shows
 * it) and meaning. A test checks the README's configuration table against it.
 */
export const CONFIG_VARIABLES: ReadonlyArray<{ name: string; default: string; meaning: string }> = Object.entries(VARIABLES).map(
  ([name, declared]: [string, Variable<z.ZodType>]) => ({ name, default: declared.shownDefault ?? declared.default ?? "unset", meaning: declared.meaning }),
);

/** The variable's value, checked by its schema; `derivedDefault` (e.g. the user in PULSE_URL) comes before the declared default. */
function get<N extends keyof Variables>(env: Env, name: N, derivedDefault?: string): z.output<Variables[N]["schema"]> {
  const declared: Variable<z.ZodType> = VARIABLES[name];
  const raw = read(env, name) ?? derivedDefault ?? declared.default;
  const result = declared.schema.safeParse(raw);
  if (!result.success) {
    const shown = raw === undefined ? "unset" : declared.secret ? "a value that is not valid" : JSON.stringify(raw);
    const problem = result.error.issues[0]?.message ?? "invalid";
    throw new ConfigError(name, `${problem} (got ${shown})`);
  }
  return result.data as z.output<Variables[N]["schema"]>;
}

// A prefix lets a staging setup (or each test file) publish on its own copy
// of the exchanges of a shared local broker without seeing anyone else's.
function prefixedExchanges(prefix: string): PulseExchanges {
  return Object.fromEntries(Object.entries(PULSE_EXCHANGES).map(([key, name]) => [key, `${prefix}${name}`])) as unknown as PulseExchanges;
}

function withCredentials(brokerUrl: string, user: string, password: string): string {
  const parsed = new URL(brokerUrl);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

function redisTopology(env: Env): RedisTopology {
  const sentinels = get(env, "REDIS_SENTINELS");
  const master = get(env, "REDIS_SENTINEL_MASTER");
  const password = get(env, "REDIS_SENTINEL_PASSWORD");
  const nodes = get(env, "REDIS_CLUSTER_NODES");
  if (sentinels && nodes)
    throw new ConfigError("REDIS_CLUSTER_NODES", "cannot be set together with REDIS_SENTINELS (Redis is either a Cluster or found through Sentinel)");
  if (sentinels) return { kind: "sentinel", sentinels, master, password };
  if (nodes) return { kind: "cluster", nodes };
  return { kind: "single" };
}

// BullMQ's scripts touch several keys of one queue at once; on a Cluster they
// must share a hash slot, which a {hash tag} in the prefix guarantees.
function bullmqPrefix(env: Env, topology: RedisTopology): string {
  const prefix = get(env, "BULLMQ_PREFIX");
  if (topology.kind !== "cluster" || prefix.startsWith("{")) return prefix;
  if (read(env, "BULLMQ_PREFIX") === undefined) return `{${prefix}}`;
  throw new ConfigError("BULLMQ_PREFIX", `must be a {hash tag} on Redis Cluster, e.g. {${prefix}} (got ${JSON.stringify(prefix)})`);
}

export function loadConfig(env: Env = process.env): Config {
  const logLevel = get(env, "LOG_LEVEL");

  const brokerUrl = get(env, "PULSE_URL");
  const fromUrl = new URL(brokerUrl);
  const user = get(env, "PULSE_USER", decodeURIComponent(fromUrl.username) || undefined);
  const password = get(env, "PULSE_PASSWORD", decodeURIComponent(fromUrl.password));
  const queueName = get(env, "PULSE_QUEUE");
  const extraSources = get(env, "TC_EXTRA_SOURCES");

  const topology = redisTopology(env);

  const dashboardUser = get(env, "DASHBOARD_USER");
  const dashboardPassword = get(env, "DASHBOARD_PASSWORD");
  if ((dashboardUser === undefined) !== (dashboardPassword === undefined)) {
    throw new ConfigError(dashboardUser === undefined ? "DASHBOARD_USER" : "DASHBOARD_PASSWORD", "must be set together with the other dashboard credential");
  }

  return {
    logLevel,
    pulse: {
      url: withCredentials(brokerUrl, user, password),
      user,
      password,
      queuePrefix: `queue/${user}/${queueName}`,
      prefetch: get(env, "PULSE_PREFETCH"),
      maxLength: get(env, "PULSE_MAX_LENGTH"),
      deliveryLimit: get(env, "PULSE_DELIVERY_LIMIT"),
      poisonMaxLength: get(env, "PULSE_POISON_MAX_LENGTH"),
      tcRoute: get(env, "TC_ROUTE"),
      declareExchanges: get(env, "PULSE_DECLARE_EXCHANGES"),
      heartbeatSeconds: get(env, "PULSE_HEARTBEAT"),
      exchanges: prefixedExchanges(get(env, "PULSE_EXCHANGE_PREFIX")),
      managementUrl: get(env, "RABBITMQ_MANAGEMENT_URL"),
    },
    taskcluster: {
      rootUrl: trimTrailingSlashes(get(env, "TASKCLUSTER_ROOT_URL")),
      extraSources: extraSources.map((s) => ({ ...s, rootUrl: trimTrailingSlashes(s.rootUrl) })),
      requestTimeoutMs: get(env, "TC_REQUEST_TIMEOUT"),
      artifactHosts: get(env, "TC_ARTIFACT_HOSTS"),
    },
    redis: {
      url: get(env, "REDIS_URL"),
      topology,
      prefix: bullmqPrefix(env, topology),
      durability: { ...get(env, "REDIS_DURABILITY"), waitTimeoutMs: get(env, "REDIS_WAIT_TIMEOUT"), unchecked: get(env, "REDIS_DURABILITY_UNCHECKED") },
    },
    database: {
      url: get(env, "DATABASE_URL"),
      poolSize: get(env, "DATABASE_POOL_SIZE"),
    },
    clones: {
      dir: get(env, "CLONES_DIR"),
      allowedHosts: get(env, "ALLOWED_HOSTS"),
    },
    dashboard: {
      port: get(env, "DASHBOARD_PORT"),
      host: get(env, "DASHBOARD_HOST"),
      user: dashboardUser,
      password: dashboardPassword,
    },
    webhook: {
      port: get(env, "WEBHOOK_PORT"),
      host: get(env, "WEBHOOK_HOST"),
      secret: get(env, "GITHUB_WEBHOOK_SECRET"),
      maxBodyBytes: get(env, "WEBHOOK_MAX_BYTES"),
    },
    github: { url: trimTrailingSlashes(get(env, "GITHUB_URL")) },
    hgSync: {
      concurrency: get(env, "HG_SYNC_CONCURRENCY"),
      reconcileIntervalMs: get(env, "RECONCILE_INTERVAL"),
      lockTtlMs: get(env, "SYNC_LOCK_TTL"),
    },
    tcIngest: {
      concurrency: get(env, "TC_INGEST_CONCURRENCY"),
      elmoJsonMaxBytes: get(env, "ELMO_JSON_MAX_BYTES"),
      elmoJsonMaxComparisons: get(env, "ELMO_JSON_MAX_COMPARISONS"),
    },
    deadLetters: {
      maxCount: get(env, "DEAD_LETTER_MAX_COUNT"),
      maxAgeMs: get(env, "DEAD_LETTER_MAX_AGE"),
    },
    tracing: { endpoint: get(env, "OTEL_EXPORTER_OTLP_ENDPOINT") },
  };
}

/** What one of our Pulse queues is bound to. */
export type FeedKind = "hgpushes" | "github" | "taskcluster";

/**
 * One Pulse queue of ours and the connection it lives on. The primary broker
 * (PULSE_URL) carries all three feeds; each TC_EXTRA_SOURCES entry carries a
 * taskcluster feed of its own deployment.
 */
export interface PulseFeed {
  /** Connection name: "pulse" for PULSE_URL, else the extra source's name. */
  connection: string;
  /** Broker URL with credentials (never log it: use redactUrl). */
  url: string;
  kind: FeedKind;
  /**
   * `queue/<user>/<PULSE_QUEUE>/v2/<kind>[-<source>]`, a quorum queue (Pulse
   * only lets a user own queues under its name). `v2`: the classic queues of
   * earlier versions cannot be re-declared as quorum queues, so these are new.
   */
  queue: string;
  /** The classic queue of earlier versions, `queue/<user>/<PULSE_QUEUE>/<kind>[-<source>]`: drained and deleted if found. */
  legacyQueue: string;
  /** `exchange/<user>/<PULSE_QUEUE>/poison`: the dead-letter exchange of this connection's queues. */
  poisonExchange: string;
  /** `queue/<user>/<PULSE_QUEUE>/poison`: where messages over the delivery limit wait for `replay --poison`. */
  poisonQueue: string;
  /** Taskcluster feeds: the Queue API root URL of the deployment. */
  rootUrl?: string;
}

export function pulseFeeds(config: Config): PulseFeed[] {
  const queueName = config.pulse.queuePrefix.split("/").slice(2).join("/");
  const names = (user: string, feed: string) => ({
    queue: `queue/${user}/${queueName}/v2/${feed}`,
    legacyQueue: `queue/${user}/${queueName}/${feed}`,
    poisonExchange: `exchange/${user}/${queueName}/poison`,
    poisonQueue: `queue/${user}/${queueName}/poison`,
  });
  const primary = (kind: FeedKind): PulseFeed => ({
    connection: "pulse",
    url: config.pulse.url,
    kind,
    ...names(config.pulse.user, kind),
    ...(kind === "taskcluster" ? { rootUrl: config.taskcluster.rootUrl } : {}),
  });
  const extras = config.taskcluster.extraSources.map((source): PulseFeed => {
    const user = decodeURIComponent(new URL(source.pulseUrl).username) || config.pulse.user;
    return { connection: source.name, url: source.pulseUrl, kind: "taskcluster", ...names(user, `taskcluster-${source.name}`), rootUrl: source.rootUrl };
  });
  return [primary("hgpushes"), primary("github"), primary("taskcluster"), ...extras];
}
