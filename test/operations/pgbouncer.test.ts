/**
 * Both pools' jobs through a real PgBouncer in transaction mode: several
 * `worker hg-sync` and `worker tc-ingest` processes, DATABASE_URL on the
 * bouncer, far more client connections than server connections. Migrations
 * go directly to PostgreSQL (createTestEnvironment): the schema engine is not
 * meant for transaction pooling.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { tcIngestJobRequest } from "../../src/contract/job-requests.ts";
import { addJob, closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { PrismaClient } from "../../src/generated/prisma/client.ts";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { openDatabase } from "../../src/storage/prisma.ts";
import { message, openQueue } from "../hg-sync/harness.ts";
import { type PgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { createTestEnvironment, SERVICES, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, standInTask, tcJob } from "../tc-ingest/fixtures.ts";

const SERVER_POOL = 5;
const CLIENT_POOL = 4;
// Above the pool: jobs also wait for one of the process's connections, which DATABASE_POOL_SIZE caps.
const CONCURRENCY = 8;
const HG_WORKERS = 2;
const TC_WORKERS = 3;
const REPOSITORIES = 6;
const TASKS = 24;
const APPLICATION = "pb-through-pgbouncer";

let env: TestEnvironment;
let bouncer: PgBouncer;
let hg: HgServer;
let queueApi: QueueApiStandIn;
let redis: Redis;
let queues: Queues;
let hgJobs: ReturnType<typeof openQueue>;
const workers: ReturnType<typeof spawnWorker>[] = [];

function spawnWorker(pool: "hg-sync" | "tc-ingest", extraEnv: Record<string, string>) {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "worker", pool, "--concurrency", String(CONCURRENCY)], {
    cwd: root,
    env: { ...process.env, ...env.env, LOG_LEVEL: "info", ...extraEnv },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let logs = "";
  child.stderr!.on("data", (chunk) => {
    logs += chunk;
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return {
    logs: () => logs,
    started: () => waitFor(`worker ${pool} to start`, () => logs.includes("worker pool started"), { timeoutMs: 30_000 }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

beforeAll(async () => {
  env = await createTestEnvironment("pgbouncer");
  bouncer = await startPgBouncer({ poolSize: SERVER_POOL });
  hg = await startHgServer();
  queueApi = await startQueueApiStandIn();
  const database = new URL(env.config.database.url).pathname.slice(1);
  const through = {
    DATABASE_URL: bouncer.url(database, APPLICATION),
    DATABASE_POOL_SIZE: String(CLIENT_POOL),
    TASKCLUSTER_ROOT_URL: queueApi.rootUrl,
  };
  for (let i = 0; i < HG_WORKERS; i++) workers.push(spawnWorker("hg-sync", through));
  for (let i = 0; i < TC_WORKERS; i++) workers.push(spawnWorker("tc-ingest", through));
  await Promise.all(workers.map((w) => w.started()));
  redis = createRedis(env.config.redis.url, "producer");
  queues = openQueues(redis, env.config.redis.prefix);
  hgJobs = openQueue(env.config);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await hgJobs?.close();
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  await queueApi?.close();
  await hg?.close();
  await bouncer?.close();
  await env?.cleanup();
});

/** Samples PgBouncer's pool of this database and PostgreSQL's view of it until stopped. */
function watchConnections(database: string) {
  const peak = { servers: 0, clients: 0, waiting: 0, backends: 0 };
  const direct = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` });
  let running = true;
  const done = (async () => {
    await direct.connect();
    try {
      while (running) {
        const pools = (await bouncer.admin("SHOW POOLS")).filter((row) => row.database === database);
        for (const row of pools) {
          const n = (key: string) => Number(row[key] ?? 0);
          peak.servers = Math.max(peak.servers, n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login"));
          peak.clients = Math.max(peak.clients, n("cl_active") + n("cl_waiting"));
          peak.waiting = Math.max(peak.waiting, n("cl_waiting"));
        }
        const { rows } = await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2", [
          database,
          APPLICATION,
        ]);
        peak.backends = Math.max(peak.backends, rows[0].n);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      await direct.end();
    }
  })();
  return {
    peak,
    async stop() {
      running = false;
      await done;
    },
  };
}

it("runs hg-sync and tc-ingest jobs from several processes through PgBouncer, with exact rows and at most default_pool_size server connections", async () => {
  const database = new URL(env.config.database.url).pathname.slice(1);

  // Upstreams: hg repositories with two pushes each, and compare-locales tasks.
  const repositories: { url: string; nodes: string[][] }[] = [];
  for (let r = 0; r < REPOSITORIES; r++) {
    const name = `l10n-central/l${r}`;
    const url = await hg.createRepo(name);
    await trackRepository(env.db, env.config.clones.allowedHosts, url, { locale: `l${r}` });
    const nodes: string[][] = [];
    for (let p = 0; p < 2; p++) {
      const commits = [0, 1, 2].map((c) => ({ message: `${name} push ${p} commit ${c}`, files: { [`f${c}.ftl`]: `${name} ${p} ${c}\n` } }));
      nodes.push((await hg.push(name, commits, { user: `u${r}@example.com` })).nodes);
    }
    repositories.push({ url, nodes });
  }
  const tasks = Array.from({ length: TASKS }, () => {
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    queueApi.addTask(task);
    return task;
  });

  const watch = watchConnections(database);
  try {
    // All at once: the pools of five processes (20 client connections) compete for 5 server connections.
    const hgIds = await Promise.all(
      repositories.map(({ url }) => hgJobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [2], message: message(url) })),
    );
    const tcIds = await Promise.all(
      tasks.map(async (task) => {
        const request = tcIngestJobRequest(tcJob(queueApi.rootUrl, task));
        await addJob(queues, request);
        return request.opts.jobId;
      }),
    );
    const hgDone = await Promise.all(hgIds.map((id) => hgJobs.finished(id, 60_000)));
    const tcDone = await Promise.all(
      tcIds.map((id) =>
        waitFor(
          `tc-ingest job ${id}`,
          async () => {
            const job = await queues["tc-ingest"].getJob(id);
            return job?.finishedOn ? job : undefined;
          },
          { timeoutMs: 60_000 },
        ),
      ),
    );
    expect(hgDone.map((job) => job.failedReason)).toEqual(hgIds.map(() => undefined));
    expect(tcDone.map((job) => job.failedReason)).toEqual(tcIds.map(() => undefined));
    // Several processes of each pool took part.
    expect(new Set(hgDone.map((job) => job.processedBy)).size).toBe(HG_WORKERS);
    expect(new Set(tcDone.map((job) => job.processedBy)).size).toBeGreaterThan(1);
  } finally {
    await watch.stop();
  }

  // Exact rows, read directly (not through the bouncer).
  for (const { url, nodes } of repositories) {
    const repo = await env.db.repository.findUniqueOrThrow({ where: { url } });
    expect(repo.lastPushId).toBe(2);
    const pushes = await env.db.push.findMany({
      where: { repositoryId: repo.id },
      orderBy: { pushId: "asc" },
      include: { changesets: { orderBy: { position: "asc" }, include: { changeset: true } } },
    });
    expect(pushes.map((p) => [p.pushId, p.changesets.map((c) => c.changeset.revision)])).toEqual([
      [1, nodes[0]],
      [2, nodes[1]],
    ]);
    expect(await env.db.repositoryChangeset.count({ where: { repositoryId: repo.id } })).toBe(6);
  }
  expect(await env.db.push.count()).toBe(REPOSITORIES * 2);
  expect(await env.db.changeset.count({ where: { placeholder: false } })).toBe(REPOSITORIES * 6);
  const builds = await env.db.build.findMany({ include: { comparisons: { include: { locale: true } } } });
  expect(builds.map((b) => b.taskId).sort()).toEqual(tasks.map((t) => t.taskId).sort());
  for (const build of builds) {
    expect(build.comparisons.map((c) => [c.config, c.locale.code]).sort()).toEqual([
      ["_configs/browser.toml", "de"],
      ["_configs/browser.toml", "fr"],
      ["_configs/toolkit.toml", "de"],
      ["_configs/toolkit.toml", "fr"],
    ]);
  }
  expect(await env.db.comparison.count()).toBe(TASKS * 4);

  const { peak } = watch;
  console.log(
    `through PgBouncer (transaction mode, default_pool_size ${SERVER_POOL}): ${HG_WORKERS + TC_WORKERS} processes × DATABASE_POOL_SIZE ${CLIENT_POOL} (--concurrency ${CONCURRENCY}); ` +
      `peak ${peak.clients} client connections (${peak.waiting} waiting), ${peak.servers} server connections, ${peak.backends} PostgreSQL backends`,
  );
  expect(peak.servers).toBeGreaterThan(0);
  expect(peak.servers).toBeLessThanOrEqual(SERVER_POOL);
  expect(peak.backends).toBeGreaterThan(0);
  expect(peak.backends).toBeLessThanOrEqual(SERVER_POOL);
  // More clients than server connections: the bouncer multiplexed them; and no
  // process opened more than DATABASE_POOL_SIZE, though it ran more jobs at once.
  expect(peak.clients).toBeGreaterThan(SERVER_POOL);
  expect(peak.clients).toBeLessThanOrEqual((HG_WORKERS + TC_WORKERS) * CLIENT_POOL);
  // No worker logged a database error (a named statement would show here as "prepared statement … does not exist").
  for (const worker of workers) expect(worker.logs()).not.toMatch(/prepared statement|PrismaClient|P10\d\d|P20\d\d/);
}, 180_000);

it("needs unnamed statements, which is what openDatabase's adapter sends: a named one breaks once it lands on another server connection", async () => {
  const database = new URL(env.config.database.url).pathname.slice(1);
  const url = bouncer.url(database);
  // Run a query, then pin the server connection it used (PgBouncer hands out the
  // most recently used one) in another client's open transaction, and run it again:
  // the second run has to go to another server connection.
  async function twiceOnDifferentServers(db: PrismaClient) {
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await db.$queryRaw`SELECT ${1}::int AS one`;
      await holder.query("BEGIN");
      await holder.query("SELECT 1");
      const rows = await db.$queryRaw<Array<{ one: number }>>`SELECT ${1}::int AS one`;
      await holder.query("COMMIT");
      return rows;
    } finally {
      await holder.end();
    }
  }
  const ours = openDatabase({ url, poolSize: 1 });
  try {
    expect(await twiceOnDifferentServers(ours)).toEqual([{ one: 1 }]);
  } finally {
    await ours.$disconnect();
  }
  // The adapter's statementNameGenerator (which we never set) would name them: PgBouncer 1.18 cannot follow.
  const named = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }, { statementNameGenerator: () => "pb_named" }) });
  try {
    await expect(twiceOnDifferentServers(named)).rejects.toThrow(/prepared statement "pb_named" does not exist/);
  } finally {
    await named.$disconnect();
  }
});
