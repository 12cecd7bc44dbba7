/**
 * A worker killed with SIGKILL in the middle of a pull: BullMQ hands the job
 * to another process once the dead one's job lock expires (stalled-job
 * check, up to ~30 s), the repository lock expires by itself (SYNC_LOCK_TTL),
 * the clone's stale hg lock is cleared, and the result is complete.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { clonePathFor } from "../../src/vcs/clone-path.ts";
import { hgBackend } from "../../src/vcs/hg.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { message, openQueue, spawnWorker } from "./harness.ts";

let env: TestEnvironment;
let hg: HgServer;
let jobs: ReturnType<typeof openQueue>;
const workers: Array<ReturnType<typeof spawnWorker>> = [];

beforeAll(async () => {
  env = await createTestEnvironment("hg-killed", { SYNC_LOCK_TTL: "3s", RECONCILE_INTERVAL: "1h" });
  hg = await startHgServer();
  jobs = openQueue(env.config);
});

afterAll(async () => {
  hg?.release();
  await Promise.all(workers.map((w) => w.stop()));
  await jobs?.close();
  await hg?.close();
  await env?.cleanup();
});

describe("a worker killed during a pull", () => {
  it("is taken over by another process; the clone is usable and the result complete", async () => {
    const url = await hg.createRepo("killed/de");
    await trackRepository(env.db, env.config.clones.allowedHosts, url);
    await hg.push(
      "killed/de",
      Array.from({ length: 20 }, (_, i) => ({ message: `c${i}`, files: { [`f${i % 3}.txt`]: `${i}\n` } })),
    );

    const first = spawnWorker(env.env, { concurrency: 1 });
    workers.push(first);
    await first.started();
    const initial = await jobs.finished(await jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [1], message: message("killed/de") }));
    expect(initial.failedReason).toBeUndefined();

    // The next pull stops at the changegroup download: kill the worker there.
    const { nodes } = await hg.push(
      "killed/de",
      Array.from({ length: 30 }, (_, i) => ({ message: `d${i}`, files: { [`g${i % 4}.txt`]: `${i}\n` } })),
    );
    hg.holdBundles("killed/de");
    const jobId = await jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [2], message: message("killed/de") });
    await waitFor("the pull to reach the changegroup download", () => hg.heldCount("killed/de") > 0);
    await first.kill();
    hg.release();

    const second = spawnWorker(env.env, { concurrency: 1 });
    workers.push(second);
    const job = await jobs.finished(jobId, 75_000);
    expect(job.failedReason).toBeUndefined();
    expect(await job.getState()).toBe("completed");

    const repo = await env.db.repository.findUniqueOrThrow({ where: { url } });
    expect(repo.lastPushId).toBe(2);
    const push = await env.db.push.findUniqueOrThrow({
      where: { repositoryId_pushId: { repositoryId: repo.id, pushId: 2 } },
      include: { changesets: { orderBy: { position: "asc" }, include: { changeset: true } } },
    });
    expect(push.changesets.map((c) => c.changeset.revision)).toEqual(nodes);
    expect(await env.db.changeset.count()).toBe(50);

    const clone = clonePathFor(env.clonesDir, url);
    expect(await hgBackend.isUsable(clone)).toBe(true);
    expect(await hgBackend.heads(clone)).toEqual([nodes.at(-1)]);
    expect((await readdir(path.dirname(clone))).filter((name) => name.includes(".tmp-"))).toEqual([]);
    // Two lock intervals: the killed one never finished and was marked
    // abandoned by the takeover, which completed.
    const runs = await env.db.syncRun.findMany({ where: { jobId }, orderBy: { startedAt: "asc" } });
    expect(runs.at(-1)).toMatchObject({ outcome: "completed" });
    expect(runs.filter((run) => run.finishedAt === null).map((run) => run.outcome)).toEqual(["abandoned: worker died while holding the lock"]);
  }, 120_000);
});
