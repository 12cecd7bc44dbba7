/**
 * A long first import killed midway (SIGKILL of the `node dist/cli.js worker
 * hg-sync` process and its git children, between two committed batches)
 * is taken over by another worker process (BullMQ's stalled-job check) and
 * continues after the last committed batch: every changeset is stored
 * exactly once, and the second run stores only what the first did not.
 *
 * Needs `npm run build` (the worker runs as users run it).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type GitUpstream, startGitUpstream } from "../../src/stand-ins/git-upstream.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { openQueue, spawnWorker } from "./harness.ts";

/** Enough for 20 batches of 2,000: a kill after the first committed batch leaves most of them to do. */
const COMMITS = 40_000;

let env: TestEnvironment;
let git: GitUpstream;
let jobs: ReturnType<typeof openQueue>;
const workers: Array<ReturnType<typeof spawnWorker>> = [];

beforeAll(async () => {
  if (!existsSync(fileURLToPath(new URL("../../dist/cli.js", import.meta.url)))) throw new Error("dist/cli.js missing: run `npm run build` first");
  env = await createTestEnvironment("hg-resume", { SYNC_LOCK_TTL: "3s", RECONCILE_INTERVAL: "1h" });
  git = await startGitUpstream();
  jobs = openQueue(env.config);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await jobs?.close();
  await git?.close();
  await env?.cleanup();
});

const storedCount = async () => Number((await env.db.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM "Changeset"`)[0]!.n);

describe("an import killed midway", () => {
  it("resumes after its last committed batch in another worker process, storing every changeset once", async () => {
    const { url, merges } = await git.generateRepo("resume/big", COMMITS);
    await trackRepository(env.db, env.config.clones.allowedHosts, url, { kind: "git" });

    const first = spawnWorker(env.env, { concurrency: 1, built: true });
    workers.push(first);
    await first.started();
    const jobId = await jobs.add({ kind: "reconcile", repoUrl: url });
    // Some batches committed, not all: kill the worker and its git processes there.
    await waitFor("a first batch to be committed", async () => (await storedCount()) > 0, { timeoutMs: 120_000, intervalMs: 20 });
    await first.kill();
    // Committed transactions stay; the one in flight is rolled back once its
    // server process sees the dead connection (wait for that, or a COMMIT
    // still on its way could land after the count).
    await waitFor("the killed worker's transactions to end", async () => {
      const busy = await env.db.$queryRaw<Array<{ n: bigint }>>`
        SELECT count(*) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')`;
      return Number(busy[0]!.n) === 0;
    });
    const storedByFirst = await storedCount();
    expect(storedByFirst).toBeGreaterThan(0);
    expect(storedByFirst).toBeLessThan(COMMITS);

    const second = spawnWorker(env.env, { concurrency: 1, built: true });
    workers.push(second);
    const job = await jobs.finished(jobId, 180_000);
    expect(job.failedReason).toBeUndefined();
    expect(await job.getState()).toBe("completed");

    // Every commit once, complete: one membership each, one file per non-merge commit.
    const [changesets, members, placeholders, files] = await Promise.all([
      env.db.changeset.count(),
      env.db.repositoryChangeset.count(),
      env.db.changeset.count({ where: { placeholder: true } }),
      env.db.changesetFile.count(),
    ]);
    expect({ changesets, members, placeholders }).toEqual({ changesets: COMMITS, members: COMMITS, placeholders: 0 });
    expect(files).toBe(COMMITS - merges);

    // Not restarted from zero: the second run stored only what the first had not committed, and said where it took over.
    expect(job.returnvalue).toMatchObject({ changesetsStored: COMMITS - storedByFirst });
    const resumed = second
      .logs()
      .split("\n")
      .filter((line) => line.includes("changesets stored already"))
      .map((line) => JSON.parse(line) as { alreadyStored: number });
    expect(resumed.map((line) => line.alreadyStored)).toEqual([storedByFirst]);
    // Bull Board's progress counts the second run's work against what was left.
    expect(job.progress).toMatchObject({
      changesetsStored: COMMITS - storedByFirst,
      alreadyStored: storedByFirst,
      total: COMMITS - storedByFirst,
      percent: 100,
    });
  }, 300_000);
});
