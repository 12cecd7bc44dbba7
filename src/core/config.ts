/**
 * The one place that reads the environment (PRODUCT §3).
 *
 * `loadConfig()` validates every variable at start, applies the defaults, and
 * throws a `ConfigError` that names the offending variable. Secrets (the
 * passwords, and credentials embedded in URLs) are never part of an error
 * message: use `redactUrl()` whenever a URL is logged.
 */
import { z } from "zod";

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;

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
    url: string;
    /** BullMQ key prefix; lets several installations (or test runs) share one Redis. */
    prefix: string;
  };
  database: { url: string };
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
}

export interface PulseExchanges {
  hgpushes: string;
  githubWebhooks: string;
  taskclusterGithubPush: string;
  taskCompleted: string;
  taskFailed: string;
}

/** The exchanges of PRODUCT §4–5, as Pulse names them. */
export const PULSE_EXCHANGES: PulseExchanges = {
  hgpushes: "exchange/hgpushes/v2",
  githubWebhooks: "exchange/github-webhooks/v1",
  taskclusterGithubPush: "exchange/taskcluster-github/v1/push",
  taskCompleted: "exchange/taskcluster-queue/v1/task-completed",
  taskFailed: "exchange/taskcluster-queue/v1/task-failed",
};

type Env = Record<string, string | undefined>;

const DEFAULT_PULSE_URL = "amqp://guest:guest@127.0.0.1:5672";

/**
 * Where the Queue API's getArtifact sends downloads: Firefox-CI's public
 * artifact CDN (firefoxci.taskcluster-artifacts.net; the other Mozilla
 * deployments' CDNs share the domain) and Google Cloud Storage, which the
 * GCP-hosted deployments answer for private artifacts, object-service
 * downloads and requests from the bucket's own region.
 */
const DEFAULT_TC_ARTIFACT_HOSTS = "*.taskcluster-artifacts.net,storage.googleapis.com";

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

function parse<T>(env: Env, name: string, schema: z.ZodType<T>, fallback: string | undefined, secret = false): T {
  const raw = read(env, name) ?? fallback;
  const result = schema.safeParse(raw);
  if (!result.success) {
    const shown = raw === undefined ? "unset" : secret ? "a value that is not valid" : JSON.stringify(raw);
    const problem = result.error.issues[0]?.message ?? "invalid";
    throw new ConfigError(name, `${problem} (got ${shown})`);
  }
  return result.data;
}

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const url = (protocols: string[]) =>
  z.string({ error: "is required" }).refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL with scheme ${protocols.join(" or ")}`);

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

const extraSourcesSchema = z.array(
  z.object({
    name: queueWord,
    pulseUrl: url(["amqp:", "amqps:"]),
    rootUrl: url(["http:", "https:"]),
  }),
);

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

export function loadConfig(env: Env = process.env): Config {
  const logLevel = parse(
    env,
    "LOG_LEVEL",
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { error: "must be one of fatal, error, warn, info, debug, trace, silent" }),
    "info",
  );

  const brokerUrl = parse(env, "PULSE_URL", url(["amqp:", "amqps:"]), DEFAULT_PULSE_URL, true);
  const fromUrl = new URL(brokerUrl);
  const user = parse(
    env,
    "PULSE_USER",
    z.string({ error: "is required (or put the user in PULSE_URL)" }).regex(/^[A-Za-z0-9_.-]+$/, "may only contain letters, digits, '.', '_' and '-'"),
    decodeURIComponent(fromUrl.username) || undefined,
  );
  const password = parse(env, "PULSE_PASSWORD", z.string(), decodeURIComponent(fromUrl.password), true);
  const queueName = parse(env, "PULSE_QUEUE", queueWord, "pulse-bridge");

  const extraSources = parse(
    env,
    "TC_EXTRA_SOURCES",
    z
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
    "[]",
    true,
  );

  const dashboardUser = read(env, "DASHBOARD_USER");
  const dashboardPassword = read(env, "DASHBOARD_PASSWORD");
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
      prefetch: parse(env, "PULSE_PREFETCH", integer(1, 500), "200"),
      maxLength: parse(env, "PULSE_MAX_LENGTH", integer(1, 10_000_000), "100000"),
      deliveryLimit: parse(env, "PULSE_DELIVERY_LIMIT", integer(1, 1000), "10"),
      poisonMaxLength: parse(env, "PULSE_POISON_MAX_LENGTH", integer(1, 1_000_000), "10000"),
      tcRoute: parse(env, "TC_ROUTE", z.string().regex(/^[A-Za-z0-9_.*#-]+$/, "must be a routing-key pattern"), "project.l10n.elmo.v1"),
      declareExchanges: parse(env, "PULSE_DECLARE_EXCHANGES", booleanFlag, "false"),
      heartbeatSeconds: parse(env, "PULSE_HEARTBEAT", integer(0, 600), "30"),
      exchanges: prefixedExchanges(parse(env, "PULSE_EXCHANGE_PREFIX", z.string().regex(/^[A-Za-z0-9_./-]*$/, "may only contain letters, digits and . _ / -"), "")),
      managementUrl: parse(env, "RABBITMQ_MANAGEMENT_URL", url(["http:", "https:"]).optional(), undefined, true),
    },
    taskcluster: {
      rootUrl: parse(env, "TASKCLUSTER_ROOT_URL", url(["http:", "https:"]), "https://firefox-ci-tc.services.mozilla.com").replace(/\/+$/, ""),
      extraSources: extraSources.map((s) => ({ ...s, rootUrl: s.rootUrl.replace(/\/+$/, "") })),
      requestTimeoutMs: parse(env, "TC_REQUEST_TIMEOUT", duration, "30s"),
      artifactHosts: parse(
        env,
        "TC_ARTIFACT_HOSTS",
        z
          .string()
          .transform((v) => v.split(",").map((h) => h.trim().toLowerCase()).filter(Boolean))
          .pipe(z.array(z.string().regex(/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?$/, "must be a comma-separated list of host names (host, host:port or *.domain)"))),
        DEFAULT_TC_ARTIFACT_HOSTS,
      ),
    },
    redis: {
      url: parse(env, "REDIS_URL", url(["redis:", "rediss:"]), "redis://127.0.0.1:6379", true),
      prefix: parse(env, "BULLMQ_PREFIX", queueWord, "bull"),
    },
    database: {
      url: parse(env, "DATABASE_URL", url(["postgresql:", "postgres:"]), "postgresql://postgres@127.0.0.1:5432/pulse_bridge", true),
    },
    clones: {
      dir: parse(env, "CLONES_DIR", z.string(), "./data/clones"),
      allowedHosts: parse(
        env,
        "ALLOWED_HOSTS",
        z
          .string()
          .transform((v) => v.split(",").map((h) => h.trim().toLowerCase()).filter(Boolean))
          .pipe(z.array(z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, "must be a comma-separated list of host names")).min(1, "must name at least one host")),
        "hg.mozilla.org,github.com",
      ),
    },
    dashboard: {
      port: parse(env, "DASHBOARD_PORT", integer(0, 65535), "3000"),
      host: parse(env, "DASHBOARD_HOST", z.string(), "127.0.0.1"),
      user: dashboardUser,
      password: dashboardPassword,
    },
    hgSync: {
      concurrency: parse(env, "HG_SYNC_CONCURRENCY", integer(1, 64), "2"),
      reconcileIntervalMs: parse(env, "RECONCILE_INTERVAL", duration, "10m"),
      lockTtlMs: parse(env, "SYNC_LOCK_TTL", duration, "60s"),
    },
    tcIngest: {
      concurrency: parse(env, "TC_INGEST_CONCURRENCY", integer(1, 256), "8"),
      elmoJsonMaxBytes: parse(env, "ELMO_JSON_MAX_BYTES", integer(1024, 64 * 1024 * 1024), String(4 * 1024 * 1024)),
      elmoJsonMaxComparisons: parse(env, "ELMO_JSON_MAX_COMPARISONS", integer(1, 100_000), "5000"),
    },
    deadLetters: {
      maxCount: parse(env, "DEAD_LETTER_MAX_COUNT", integer(1, 10_000_000), "10000"),
      maxAgeMs: parse(env, "DEAD_LETTER_MAX_AGE", duration.pipe(z.number().min(SECOND, "must be at least 1s")), "30d"),
    },
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

/**
 * Every variable `loadConfig` reads, with its default and meaning. The README's
 * configuration table is checked against this list by a test.
 */
export const CONFIG_VARIABLES: ReadonlyArray<{ name: string; default: string; meaning: string }> = [
  { name: "PULSE_URL", default: DEFAULT_PULSE_URL, meaning: "broker URL; real Pulse is amqps://pulse.mozilla.org:5671" },
  { name: "PULSE_USER", default: "from PULSE_URL", meaning: "Pulse user; also names the queues" },
  { name: "PULSE_PASSWORD", default: "from PULSE_URL", meaning: "Pulse password (secret)" },
  { name: "PULSE_QUEUE", default: "pulse-bridge", meaning: "queues are queue/<PULSE_USER>/<PULSE_QUEUE>/v2/<feed>, poison queue queue/<PULSE_USER>/<PULSE_QUEUE>/poison" },
  { name: "PULSE_PREFETCH", default: "200", meaning: "unacked messages in flight per consumer (1-500)" },
  { name: "PULSE_MAX_LENGTH", default: "100000", meaning: "x-max-length of our queues (Pulse requires bounded queues)" },
  { name: "PULSE_DELIVERY_LIMIT", default: "10", meaning: "redeliveries without an ack before a message goes to the poison queue (x-delivery-limit, 1-1000)" },
  { name: "PULSE_POISON_MAX_LENGTH", default: "10000", meaning: "x-max-length of the poison queue" },
  { name: "PULSE_HEARTBEAT", default: "30", meaning: "AMQP heartbeat, seconds" },
  { name: "PULSE_DECLARE_EXCHANGES", default: "false", meaning: "development only: declare exchanges instead of checking them" },
  { name: "PULSE_EXCHANGE_PREFIX", default: "(none)", meaning: "prefix for exchange names (local brokers, staging, tests)" },
  { name: "RABBITMQ_MANAGEMENT_URL", default: "unset", meaning: "RabbitMQ management API (http://user:pass@host:15672), for unacked counts in /metrics" },
  { name: "TC_ROUTE", default: "project.l10n.elmo.v1", meaning: "custom route bound on task-completed and task-failed" },
  { name: "TASKCLUSTER_ROOT_URL", default: "https://firefox-ci-tc.services.mozilla.com", meaning: "Queue API of the deployment on PULSE_URL" },
  { name: "TC_EXTRA_SOURCES", default: "[]", meaning: "JSON list of further deployments: [{name, pulseUrl, rootUrl}]" },
  { name: "TC_REQUEST_TIMEOUT", default: "30s", meaning: "timeout of one Queue API request" },
  { name: "TC_ARTIFACT_HOSTS", default: DEFAULT_TC_ARTIFACT_HOSTS, meaning: "hosts artifact downloads may be redirected to, besides the root URLs' hosts (host, host:port, *.domain)" },
  { name: "REDIS_URL", default: "redis://127.0.0.1:6379", meaning: "BullMQ's Redis" },
  { name: "BULLMQ_PREFIX", default: "bull", meaning: "BullMQ key prefix in Redis" },
  { name: "DATABASE_URL", default: "postgresql://postgres@127.0.0.1:5432/pulse_bridge", meaning: "PostgreSQL, through Prisma" },
  { name: "CLONES_DIR", default: "./data/clones", meaning: "shared clone storage" },
  { name: "ALLOWED_HOSTS", default: "hg.mozilla.org,github.com", meaning: "hosts we clone from" },
  { name: "HG_SYNC_CONCURRENCY", default: "2", meaning: "default --concurrency of worker hg-sync" },
  { name: "RECONCILE_INTERVAL", default: "10m", meaning: "how often every tracked repository is poked" },
  { name: "SYNC_LOCK_TTL", default: "60s", meaning: "expiry of a repository's sync lock (renewed while held)" },
  { name: "TC_INGEST_CONCURRENCY", default: "8", meaning: "default --concurrency of worker tc-ingest" },
  { name: "ELMO_JSON_MAX_BYTES", default: "4194304", meaning: "elmo.json larger than this once decoded (4 MiB) fails its job" },
  { name: "ELMO_JSON_MAX_COMPARISONS", default: "5000", meaning: "elmo.json with more comparisons fails its job" },
  { name: "DASHBOARD_PORT", default: "3000", meaning: "dashboard HTTP port" },
  { name: "DASHBOARD_HOST", default: "127.0.0.1", meaning: "dashboard bind address" },
  { name: "DASHBOARD_USER", default: "unset", meaning: "with DASHBOARD_PASSWORD: enables write actions in Bull Board" },
  { name: "DASHBOARD_PASSWORD", default: "unset", meaning: "see DASHBOARD_USER (secret)" },
  { name: "DEAD_LETTER_MAX_COUNT", default: "10000", meaning: "dead letters kept; the bridge removes the oldest beyond this" },
  { name: "DEAD_LETTER_MAX_AGE", default: "30d", meaning: "dead letters older than this are removed by the bridge" },
  { name: "LOG_LEVEL", default: "info", meaning: "pino log level" },
];
