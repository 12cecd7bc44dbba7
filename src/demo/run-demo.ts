/**
 * `pulse-bridge demo`: the whole flow on the local services, in one process.
 *
 * 1. local upstreams: Mercurial repositories behind an hg.mozilla.org
 *    stand-in (with json-pushes), a git repository over HTTP, and a
 *    Taskcluster stand-in serving a compare-locales run's elmo.json;
 * 2. `start` in-process (migrate, dashboard, pools, bridge) on the demo's own
 *    database, BullMQ prefix, Pulse queues and exchanges (demo-config.ts);
 * 3. the repositories are tracked, pushed to, and the messages upstream would
 *    send (hgpushes changegroup.1, a GitHub push, task-completed on the elmo
 *    route) are published to the local broker;
 * 4. once the queues are idle, a summary of what was stored.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import amqp from "amqplib";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";
import { startAllRoles } from "../start/all-roles.ts";
import { loadConfig, type Config } from "../core/config.ts";
import { openDatabase, type Database } from "../storage/prisma.ts";
import type { QueueName } from "../contract/contracts.ts";
import type { Queues } from "../contract/queues.ts";
import { hgSyncJobRequest } from "../contract/job-requests.ts";
import { addJob, closeQueues, openQueues } from "../contract/queues.ts";
import { trackForest, trackRepository } from "../jobs/hg-sync/tracking.ts";
import { Lifecycle } from "../core/lifecycle.ts";
import { createLogger } from "../core/log.ts";
import { createRedis } from "../core/redis.ts";
import { DEMO_NAME, demoEnvironment, demoExchanges, portIsFree, resetDemoState } from "./demo-config.ts";
import { GitUpstream, type GitPushResult } from "./git-upstream.ts";
import { HgUpstream, type PushAnnouncement } from "./hg-upstream.ts";
import { slugid, TaskclusterStandIn } from "./taskcluster-stand-in.ts";

export interface DemoOptions {
  env: Record<string, string | undefined>;
  /** Keep everything running (dashboard included) until SIGINT/SIGTERM. */
  serve: boolean;
  /** How long to wait for the queues to drain. */
  timeoutMs: number;
  print: (line: string) => void;
}

export interface DemoSummary {
  repositories: number;
  pushes: number;
  changesets: number;
  comparisons: number;
  jobs: Record<QueueName, { completed: number; failed: number; retrying: number; pending: number }>;
  dashboardUrl: string;
}

const LOCALIZER = "Localizer <l10n@example.org>";

const EN_US = {
  "browser/browser/browser.ftl": "browser-main-window-title = { -brand-full-name }\nnew-tab = New Tab\n",
  "browser/browser/preferences.ftl": "pane-general-title = General\npane-search-title = Search\n",
};
const TRANSLATIONS: Record<string, Record<string, string>> = {
  de: { "browser/browser/browser.ftl": "browser-main-window-title = { -brand-full-name }\nnew-tab = Neuer Tab\n", "browser/browser/preferences.ftl": "pane-general-title = Allgemein\n" },
  fr: { "browser/browser/browser.ftl": "browser-main-window-title = { -brand-full-name }\nnew-tab = Nouvel onglet\n", "browser/browser/preferences.ftl": "pane-general-title = Général\npane-search-title = Recherche\n" },
};

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const workDir = await mkdtemp(path.join(tmpdir(), `${DEMO_NAME}-`));
  const hg = new HgUpstream(path.join(workDir, "hg"));
  const git = new GitUpstream(path.join(workDir, "git"));
  const taskcluster = new TaskclusterStandIn();
  await Promise.all([hg.start(), git.start(), taskcluster.start()]);

  const env = demoEnvironment(options.env, { taskclusterRootUrl: taskcluster.rootUrl, clonesDir: path.join(workDir, "clones") });
  let config = loadConfig(env);
  // A dashboard already running on the usual port must not stop the tour.
  if (!(await portIsFree(config.dashboard.host, config.dashboard.port))) config = loadConfig({ ...env, DASHBOARD_PORT: "0" });
  const log = createLogger(options.env.LOG_LEVEL ? config.logLevel : "warn", "demo");
  const lifecycle = new Lifecycle(log);
  lifecycle.defer("upstreams", async () => {
    await Promise.allSettled([hg.close(), git.close(), taskcluster.close()]);
    await rm(workDir, { recursive: true, force: true });
  });
  if (options.serve) lifecycle.handleSignals();

  try {
    options.print(`demo: resetting its own state (database ${new URL(config.database.url).pathname.slice(1)}, BullMQ prefix ${config.redis.prefix}, Pulse queues ${config.pulse.queuePrefix}/*)`);
    await resetDemoState(config);
    const roles = await startAllRoles({ config, log, lifecycle });
    const db = openDatabase(config.database.url, { max: 2 });
    lifecycle.defer("demo database", () => db.$disconnect());
    const redis = createRedis(config.redis.url, "worker");
    lifecycle.defer("demo redis", () => redis.quit().catch(() => redis.disconnect()));
    const queues = openQueues(redis, config.redis.prefix);
    lifecycle.defer("demo queues", () => closeQueues(queues));
    await waitForConsumers(config, options.timeoutMs);

    options.print(`demo: upstreams at ${hg.url} (hg), ${git.url} (git), ${taskcluster.rootUrl} (Taskcluster)`);
    const { announcements, gitPush, revisions } = await createUpstreams(db, hg, git);
    const taskId = slugid();
    taskcluster.addTask({
      taskId,
      taskGroupId: slugid(),
      source: `${hg.repoUrl("l10n/gecko-strings")}/file/${revisions.geckoStrings}/.taskcluster.yml`,
      artifacts: elmoArtifacts(hg, revisions),
    });
    await publishMessages(config, announcements, gitPush, taskId);
    // A GitHub push names https://github.com/<owner>/<repo>, which a local
    // upstream cannot be; the demo's git repository is synced the way the
    // periodic reconcile pokes every tracked repository.
    await addJob(queues, hgSyncJobRequest({ kind: "reconcile", repoUrl: gitPush.repoUrl }));
    options.print(`demo: published ${announcements.length} hg pushes, 1 GitHub push and 1 task-completed message, and poked the git repository; waiting for the jobs`);

    // One hg-sync job per push, the GitHub push and the git poke; one tc-ingest run.
    const expected: Partial<Record<QueueName, number>> = {};
    if (roles.pools.includes("hg-sync")) expected["hg-sync"] = announcements.length + 2;
    if (roles.pools.includes("tc-ingest")) expected["tc-ingest"] = 1;
    await waitForIdle(queues, expected, options.timeoutMs);
    const summary = await summarize(db, queues, roles.dashboard.url);
    printSummary(summary, options.print, roles.pools);
    if (options.serve) {
      options.print(`demo: serving ${summary.dashboardUrl} until Ctrl-C`);
      await new Promise<void>((resolve) => lifecycle.signal.addEventListener("abort", () => resolve(), { once: true }));
    } else {
      options.print(`demo: the dashboard stopped with the demo; \`pulse-bridge demo --serve\` keeps it running, or browse the stored data with BULLMQ_PREFIX=${config.redis.prefix} and DATABASE_URL=<…>/${new URL(config.database.url).pathname.slice(1)} set for \`pulse-bridge dashboard\``);
    }
    return summary;
  } finally {
    await lifecycle.shutdown("demo finished");
  }
}

/** The bridge binds its queues asynchronously: publish only once they exist and are consumed. */
async function waitForConsumers(config: Config, timeoutMs: number): Promise<void> {
  const { pulseFeeds } = await import("../core/config.ts");
  const connection = await amqp.connect(config.pulse.url, AMQP_SOCKET_OPTIONS);
  connection.on("error", () => {});
  const deadline = Date.now() + timeoutMs;
  try {
    for (const feed of pulseFeeds(config)) {
      for (;;) {
        const channel = await connection.createChannel();
        channel.on("error", () => {});
        const found = await channel.checkQueue(feed.queue).then((q) => q.consumerCount > 0, () => false);
        await channel.close().catch(() => {});
        if (found) break;
        if (Date.now() > deadline) throw new Error(`the bridge did not start consuming ${feed.queue}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    await connection.close().catch(() => {});
  }
}

async function createUpstreams(db: Database, hg: HgUpstream, git: GitUpstream) {
  // What `pulse-bridge track forest|repo` does, through the same functions.
  const hosts = ["127.0.0.1"];
  await trackForest(db, hosts, "l10n-central", hg.repoUrl("l10n-central"));
  await trackRepository(db, hosts, await hg.createRepository("l10n/gecko-strings"), { kind: "hg" });
  for (const code of Object.keys(TRANSLATIONS)) {
    await trackRepository(db, hosts, await hg.createRepository(`l10n-central/${code}`), { kind: "hg", forest: "l10n-central", locale: code });
  }
  await trackRepository(db, hosts, await git.createRepository("mozilla-l10n/firefox-l10n-demo"), { kind: "git", name: "mozilla-l10n/firefox-l10n-demo" });

  const announcements: PushAnnouncement[] = [];
  const now = Math.floor(Date.now() / 1000);
  announcements.push(await hg.push("l10n/gecko-strings", "strings@example.org", [{ author: "Strings <strings@example.org>", message: "Bug 1900001 - Add new tab string", files: { "browser/browser/browser.ftl": EN_US["browser/browser/browser.ftl"] } }], now - 120));
  announcements.push(
    await hg.push("l10n/gecko-strings", "strings@example.org", [{ author: "Strings <strings@example.org>", message: "Bug 1900002 - Add preferences strings", files: { "browser/browser/preferences.ftl": EN_US["browser/browser/preferences.ftl"] } }], now - 60),
  );
  for (const [code, files] of Object.entries(TRANSLATIONS)) {
    announcements.push(
      await hg.push(
        `l10n-central/${code}`,
        "l10n@example.org",
        Object.entries(files).map(([file, content]) => ({ author: LOCALIZER, message: `Pontoon: Update ${code} localization of Firefox (${path.basename(file)})`, files: { [file]: content } })),
        now - 30,
      ),
    );
  }
  const gitPush = await git.push("mozilla-l10n/firefox-l10n-demo", [
    { author: LOCALIZER, message: "Pontoon: Update German (de) localization of Firefox", files: { "de/browser/browser/browser.ftl": TRANSLATIONS.de!["browser/browser/browser.ftl"]! } },
    { author: LOCALIZER, message: "Pontoon: Update French (fr) localization of Firefox", files: { "fr/browser/browser/browser.ftl": TRANSLATIONS.fr!["browser/browser/browser.ftl"]! } },
  ]);
  const head = (repo: string) => announcements.filter((a) => a.path === repo).at(-1)!.heads[0]!;
  return { announcements, gitPush, revisions: { geckoStrings: head("l10n/gecko-strings"), de: head("l10n-central/de"), fr: head("l10n-central/fr") } };
}

function elmoArtifacts(hg: HgUpstream, revisions: { geckoStrings: string; de: string; fr: string }): Record<string, unknown> {
  const summary = (changed: number, missing: number) => ({ errors: 0, warnings: 0, missing, missing_w: missing * 3, report: 0, obsolete: 0, changed, changed_w: changed * 2, unchanged: 0, unchanged_w: 0, keys: 0 });
  const comparisons = [
    { locale: "de", config: "browser/locales/l10n.toml", artifact: "compares/browser.de.json", revisions: { "/l10n/gecko-strings/": revisions.geckoStrings, "/l10n-central/de/": revisions.de }, summary: summary(3, 1) },
    { locale: "fr", config: "browser/locales/l10n.toml", artifact: "compares/browser.fr.json", revisions: { "/l10n/gecko-strings/": revisions.geckoStrings, "/l10n-central/fr/": revisions.fr }, summary: summary(4, 0) },
  ];
  const artifacts: Record<string, unknown> = {
    "public/compare-locales/elmo.json": { version: "1.0", "compare-locales": "9.0.4", repository: `${hg.repoUrl("l10n/gecko-strings")}/`, comparisons },
  };
  for (const comparison of comparisons) artifacts[`public/compare-locales/${comparison.artifact}`] = { details: {}, summary: { [comparison.locale]: comparison.summary } };
  return artifacts;
}

async function publishMessages(config: Config, announcements: PushAnnouncement[], gitPush: GitPushResult, taskId: string): Promise<void> {
  const exchanges = demoExchanges(config);
  const connection = await amqp.connect(config.pulse.url, AMQP_SOCKET_OPTIONS);
  connection.on("error", () => {});
  const channel = await connection.createConfirmChannel();
  channel.on("error", () => {});
  const publish = (exchange: string, routingKey: string, body: unknown, headers?: Record<string, unknown>) =>
    channel.publish(exchange, routingKey, Buffer.from(JSON.stringify(body)), { persistent: true, contentType: "application/json", contentEncoding: "utf-8", ...(headers ? { headers } : {}) });
  try {
    for (const a of announcements) {
      const startId = a.push.pushid - 1;
      publish(exchanges.hgpushes, a.path, {
        payload: {
          type: "changegroup.1",
          data: {
            repo_url: a.repoUrl,
            heads: a.heads,
            source: "serve",
            pushlog_pushes: [
              {
                pushid: a.push.pushid,
                user: a.push.user,
                time: a.push.time,
                push_json_url: `${a.repoUrl}/json-pushes?version=2&startID=${startId}&endID=${a.push.pushid}`,
                push_full_json_url: `${a.repoUrl}/json-pushes?version=2&full=1&startID=${startId}&endID=${a.push.pushid}`,
              },
            ],
          },
        },
        _meta: { exchange: "exchange/hgpushes/v2", routing_key: a.path, serializer: "json", sent: new Date().toISOString().replace("Z", "") },
      });
    }
    const [organization, repository] = gitPush.fullName.split("/") as [string, string];
    publish(exchanges.taskclusterGithubPush, `primary.${organization}.${repository}`, {
      version: 1,
      organization,
      repository,
      installationId: 1,
      eventId: randomUUID(),
      tasks_for: "github-push",
      branch: "main",
      body: {
        ref: "refs/heads/main",
        before: gitPush.before,
        after: gitPush.after,
        created: false,
        deleted: false,
        forced: false,
        commits: gitPush.commits.map((c) => ({ ...c, distinct: true, tree_id: c.id, url: `${gitPush.repoUrl}/commit/${c.id}`, committer: c.author })),
        head_commit: gitPush.commits.at(-1),
        pusher: { name: "l10n-bot", email: "l10n@example.org" },
        repository: { full_name: gitPush.fullName, name: repository, clone_url: `${gitPush.repoUrl}.git`, html_url: gitPush.repoUrl, pushed_at: Math.floor(Date.now() / 1000) },
      },
    });
    const taskGroupId = slugid();
    const now = new Date().toISOString();
    publish(
      exchanges.taskCompleted,
      `primary.${taskId}.0.demo.demo-1.gecko-3.b-linux-gcp.gecko-level-3.${taskGroupId}._`,
      {
        status: {
          taskId,
          provisionerId: "gecko-3",
          workerType: "b-linux-gcp",
          taskQueueId: "gecko-3/b-linux-gcp",
          schedulerId: "gecko-level-3",
          projectId: "none",
          taskGroupId,
          priority: "low",
          deadline: now,
          expires: now,
          retriesLeft: 5,
          state: "completed",
          runs: [{ runId: 0, state: "completed", reasonCreated: "scheduled", reasonResolved: "completed", workerGroup: "demo", workerId: "demo-1", takenUntil: now, scheduled: now, started: now, resolved: now }],
        },
        runId: 0,
        task: { tags: { kind: "l10n" } },
        workerGroup: "demo",
        workerId: "demo-1",
        version: 1,
      },
      { CC: [`route.${config.pulse.tcRoute}`] },
    );
    await channel.waitForConfirms();
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Waits until every expected job exists and none is waiting or running.
 * Delayed jobs count as settled when they are scheduled (the periodic
 * reconcile) or retries after a failed attempt, which the summary reports.
 */
async function waitForIdle(queues: Queues, expected: Partial<Record<QueueName, number>>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let settled = true;
    for (const [name, count] of Object.entries(expected) as Array<[QueueName, number]>) {
      const counts = await queues[name].getJobCounts("waiting", "active", "prioritized", "completed", "failed");
      const delayed = await queues[name].getDelayed();
      // A job delayed without a failed attempt is deferred work (hg-sync waits
      // for a repository's lock that way): not settled.
      if (delayed.some((job) => job.attemptsMade === 0 && !job.id?.startsWith("repeat:"))) settled = false;
      const finished = (counts.completed ?? 0) + (counts.failed ?? 0) + delayed.length;
      if ((counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0) > 0 || finished < count) settled = false;
    }
    if (settled || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function summarize(db: Database, queues: Queues, dashboardUrl: string): Promise<DemoSummary> {
  const jobs = {} as DemoSummary["jobs"];
  for (const name of ["hg-sync", "tc-ingest", "dead-letter"] as const) {
    const counts = await queues[name].getJobCounts("completed", "failed", "waiting", "active", "prioritized");
    const retrying = (await queues[name].getDelayed()).filter((job) => job.attemptsMade > 0).length;
    jobs[name] = { completed: counts.completed ?? 0, failed: counts.failed ?? 0, retrying, pending: (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0) };
  }
  return {
    repositories: await db.repository.count(),
    pushes: await db.push.count(),
    changesets: await db.changeset.count(),
    comparisons: await db.comparison.count(),
    jobs,
    dashboardUrl,
  };
}

function printSummary(summary: DemoSummary, print: (line: string) => void, pools: QueueName[]): void {
  print("");
  print("pulse-bridge demo summary");
  print(`  repositories: ${summary.repositories}`);
  print(`  pushes:       ${summary.pushes}`);
  print(`  changesets:   ${summary.changesets}`);
  print(`  comparisons:  ${summary.comparisons}`);
  for (const [queue, counts] of Object.entries(summary.jobs)) {
    const note = queue !== "dead-letter" && !pools.includes(queue as QueueName) ? " (no worker pool for this queue in this build)" : "";
    print(`  jobs ${queue.padEnd(11)} ${counts.completed} completed, ${counts.failed} failed, ${counts.retrying} retrying, ${counts.pending} pending${note}`);
  }
  print(`  dashboard:    ${summary.dashboardUrl}/queues (Bull Board), ${summary.dashboardUrl}/api/repositories, ${summary.dashboardUrl}/metrics`);
}
