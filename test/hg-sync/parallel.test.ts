/**
 * Parallel safety: three real worker processes, five repositories, sixty
 * pushes announced in random order with duplicates, as real hgpushes
 * changegroup.1 messages published on the broker and carried by two bridges
 * competing on the Pulse queue. Syncs of a repository never overlap (SyncRun
 * intervals, stamped by the database clock), every push is stored once, and
 * the result equals a sequential sync's.
 */
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BridgeHandle, startBridge } from "../../src/bridge/bridge.ts";
import { createLogger } from "../../src/core/log.ts";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { formatJson } from "../support/formats.ts";
import { declareExchanges, openPublisher, type Publisher } from "../support/pulse.ts";
import { seededRandom } from "../support/seeded-random.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { openQueue, spawnWorker, startWorker } from "./harness.ts";
import { historySnapshot } from "./snapshot.ts";

const REPOS = ["par/de", "par/fr", "par/it", "par/ja", "par/pl"];
const PUSHES_PER_REPO = 12;

let env: TestEnvironment;
let sequentialEnv: TestEnvironment;
let hg: HgServer;
let jobs: ReturnType<typeof openQueue>;
const workers: Array<ReturnType<typeof spawnWorker>> = [];
const bridges: BridgeHandle[] = [];
let publisher: Publisher;

/** A changegroup.1 message as hg.mozilla.org publishes it (the real envelope, our repository and push). */
function changegroup(repo: string, pushId: number, head: string) {
  const envelope = formatJson("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json");
  const repoUrl = hg.repoUrl(repo);
  const push = envelope.payload.data.pushlog_pushes[0];
  envelope.payload.data = {
    ...envelope.payload.data,
    repo_url: repoUrl,
    heads: [head],
    pushlog_pushes: [
      {
        ...push,
        pushid: pushId,
        push_json_url: `${repoUrl}/json-pushes?version=2&startID=${pushId - 1}&endID=${pushId}`,
        push_full_json_url: `${repoUrl}/json-pushes?version=2&full=1&startID=${pushId - 1}&endID=${pushId}`,
      },
    ],
  };
  envelope._meta = { ...envelope._meta, exchange: env.config.pulse.exchanges.hgpushes, routing_key: repo };
  return envelope;
}

// Deterministic shuffling, so a failure can be replayed.
const random = seededRandom(20261123);

beforeAll(async () => {
  env = await createTestEnvironment("hg-parallel", { RECONCILE_INTERVAL: "1h" });
  sequentialEnv = await createTestEnvironment("hg-sequential", { RECONCILE_INTERVAL: "1h" });
  hg = await startHgServer();
  jobs = openQueue(env.config);
  for (const repo of REPOS) {
    const url = await hg.createRepo(repo);
    await trackRepository(env.db, env.config.clones.allowedHosts, url, { locale: repo.split("/")[1] });
    await trackRepository(sequentialEnv.db, sequentialEnv.config.clones.allowedHosts, url, { locale: repo.split("/")[1] });
  }
  for (let i = 0; i < 3; i++) workers.push(spawnWorker(env.env, { concurrency: 2 }));
  await Promise.all(workers.map((w) => w.started()));
  publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
  const log = createLogger(env.config.logLevel, "test-bridge");
  for (let i = 0; i < 2; i++) bridges.push(await startBridge({ config: env.config, log }));
});

afterAll(async () => {
  await Promise.all(bridges.map((b) => b.close()));
  await publisher?.close();
  await Promise.all(workers.map((w) => w.stop()));
  await jobs?.close();
  await hg?.close();
  await env?.cleanup();
  await sequentialEnv?.cleanup();
});

describe("hg-sync in parallel", () => {
  it("never overlaps syncs of a repository and stores every push exactly once", async () => {
    const events = REPOS.flatMap((repo) => Array.from({ length: PUSHES_PER_REPO }, () => repo)).sort(() => random() - 0.5);
    const pending: Array<{ repo: string; pushId: number; head: string }> = [];
    const announce = (next: { repo: string; pushId: number; head: string }) =>
      publisher.publish(env.config.pulse.exchanges.hgpushes, next.repo, changegroup(next.repo, next.pushId, next.head));
    for (const repo of events) {
      const parentCount = hg.pushes(repo).length;
      const commits = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => ({
        message: `${repo} push ${parentCount + 1} commit ${i}`,
        files: { [`f${i % 2}.ftl`]: `${random()}\n` },
      }));
      const { pushId } = await hg.push(repo, commits);
      const head = hg.pushes(repo).at(-1)!.nodes.at(-1)!;
      pending.push({ repo, pushId, head });
      if (random() < 0.3) pending.push({ repo, pushId, head }); // duplicate delivery
      // Announce a random subset of what is pending, out of order.
      while (pending.length && random() < 0.6) {
        const [next] = pending.splice(Math.floor(random() * pending.length), 1);
        await announce(next!);
      }
    }
    for (const next of pending.sort(() => random() - 0.5)) await announce(next);

    await waitFor(
      "every repository to reach its last push and the queue to drain",
      async () => {
        const repos = await env.db.repository.findMany();
        const counts = await jobs.queue.getJobCounts("active", "waiting", "prioritized", "failed");
        const outstanding = bridges.reduce((sum, b) => sum + b.status().outstanding, 0);
        return repos.every((r) => r.lastPushId === PUSHES_PER_REPO) &&
          outstanding === 0 &&
          counts.active === 0 &&
          counts.waiting === 0 &&
          counts.prioritized === 0
          ? counts
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    expect((await jobs.queue.getJobCounts("failed")).failed).toBe(0);
    // Every announcement was a valid message: none was dead-lettered.
    const deadLetters = new Queue("dead-letter", { connection: { url: env.config.redis.url }, prefix: env.config.redis.prefix });
    try {
      expect(await deadLetters.count()).toBe(0);
    } finally {
      await deadLetters.close();
    }

    // No two lock intervals of one repository overlap.
    const runs = await env.db.syncRun.findMany({ orderBy: [{ repositoryId: "asc" }, { startedAt: "asc" }] });
    expect(runs.length).toBeGreaterThanOrEqual(REPOS.length);
    for (const run of runs) expect(run.finishedAt, `run ${run.id}`).not.toBeNull();
    for (let i = 1; i < runs.length; i++) {
      const [previous, current] = [runs[i - 1]!, runs[i]!];
      if (previous.repositoryId !== current.repositoryId) continue;
      expect(current.startedAt.getTime(), `run ${current.id} starts before run ${previous.id} ended`).toBeGreaterThanOrEqual(previous.finishedAt!.getTime());
    }
    // More than one process took part.
    expect(new Set(runs.map((r) => r.worker)).size).toBeGreaterThan(1);

    // Every push exactly once, with the changesets upstream recorded.
    for (const repo of REPOS) {
      const stored = await env.db.push.findMany({
        where: { repository: { url: hg.repoUrl(repo) } },
        orderBy: { pushId: "asc" },
        include: { changesets: { orderBy: { position: "asc" }, include: { changeset: true } } },
      });
      expect(stored.map((p) => p.pushId)).toEqual(Array.from({ length: PUSHES_PER_REPO }, (_, i) => i + 1));
      expect(stored.map((p) => p.changesets.map((c) => c.changeset.revision))).toEqual(hg.pushes(repo).map((p) => p.nodes));
    }

    // The same history, synced by one worker one repository at a time.
    const sequential = await startWorker(sequentialEnv.config, 1);
    const sequentialJobs = openQueue(sequentialEnv.config);
    try {
      for (const repo of REPOS) {
        const id = await sequentialJobs.add({ kind: "reconcile", repoUrl: hg.repoUrl(repo) });
        const job = await sequentialJobs.finished(id);
        expect(job.failedReason).toBeUndefined();
      }
    } finally {
      await sequential.stop();
      await sequentialJobs.close();
    }
    expect(await historySnapshot(env.db)).toEqual(await historySnapshot(sequentialEnv.db));
  }, 150_000);
});
