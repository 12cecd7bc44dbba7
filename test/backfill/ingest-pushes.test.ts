/**
 * `pulse-bridge ingest pushes` against a real `hg serve` stand-in and an
 * in-process hg-sync pool: pushes missing from the database (deleted after
 * a full sync) are stored again, exactly those, with their changesets; a
 * second run finds nothing missing; --dry-run enqueues nothing; a range
 * beyond what the database has read stores everything up to it, so later
 * pokes miss nothing.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { openQueue, startWorker } from "../hg-sync/harness.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const NAME = "l10n-central/de";

let env: TestEnvironment;
let hg: HgServer;
let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
let jobs: ReturnType<typeof openQueue>;
let url: string;
let repositoryId: number;
const pushNodes = new Map<number, string[]>();

async function cli(...args: string[]) {
  return cliWith({}, ...args);
}

async function cliWith(extraEnv: Record<string, string>, ...args: string[]) {
  return exec(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: root, env: { ...process.env, ...env.env, ...extraEnv } });
}

/** Push id → its changesets in push order, as stored. */
async function storedPushes(): Promise<Map<number, string[]>> {
  const pushes = await env.db.push.findMany({
    where: { repositoryId },
    orderBy: { pushId: "asc" },
    include: { changesets: { orderBy: { position: "asc" }, include: { changeset: { select: { revision: true } } } } },
  });
  return new Map(pushes.map((p) => [p.pushId, p.changesets.map((c) => c.changeset.revision.trim())]));
}

async function push(n: number) {
  const { pushId, nodes } = await hg.push(NAME, [{ message: `push ${n}`, files: { [`f${n}.ftl`]: `k = ${n}\n` } }]);
  pushNodes.set(pushId, nodes);
}

beforeAll(async () => {
  env = await createTestEnvironment("backfill-pushes", { RECONCILE_INTERVAL: "1h" });
  hg = await startHgServer();
  worker = await startWorker(env.config);
  jobs = openQueue(env.config);
  url = await hg.createRepo(NAME);
  for (let n = 1; n <= 6; n++) await push(n);
  repositoryId = (await trackRepository(env.db, env.config.clones.allowedHosts, url)).id;
  const sync = await jobs.finished(await jobs.add({ kind: "reconcile", repoUrl: url }));
  expect(sync.returnvalue).toMatchObject({ pushesStored: 6 });
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await jobs?.close();
  await hg?.close();
  await env?.cleanup();
});

describe("ingest pushes", () => {
  it("stores exactly the missing pushes of the range, once", async () => {
    await env.db.push.deleteMany({ where: { repositoryId, pushId: { in: [2, 3, 5] } } });
    const jobsBefore = (await jobs.queue.getJobs()).length;

    const { stdout: dry } = await cli("ingest", "pushes", NAME, "--from", "2", "--to", "6", "--dry-run");
    expect(dry).toContain(`${NAME}: pushlog at push 6, database at 6; pushes 2-6: 2 stored, 3 missing (2-3, 5)`);
    expect(dry).toContain(`would enqueue job pushlog-range|`);
    expect((await jobs.queue.getJobs()).length).toBe(jobsBefore);

    const { stdout } = await cli("ingest", "pushes", url, "--from", "2", "--to", "6", "--json");
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ from: 2, to: 6, stored: 2, missing: 3, missingIds: "2-3, 5", job: { outcome: "added", fromPushId: 2, toPushId: 5 } });
    const done = await jobs.finished(summary.job.jobId);
    expect(done.failedReason).toBeUndefined();
    expect(done.returnvalue).toMatchObject({ pushesStored: 3, changesetsStored: 0, lastPushId: 6 });
    expect(await storedPushes()).toEqual(pushNodes);

    const { stdout: again } = await cli("ingest", "pushes", NAME);
    expect(again).toContain("pushes 1-6: 6 stored, 0 missing");
    expect(again).toContain("nothing missing: nothing enqueued");
    expect((await jobs.queue.getJobs()).length).toBe(jobsBefore + 1);
  }, 60_000);

  it("a range beyond what the database has read stores everything up to its end", async () => {
    for (let n = 7; n <= 9; n++) await push(n);
    // The database has read up to 6; only 8-9 are asked for: 7 must not be skipped.
    const { stdout } = await cli("ingest", "pushes", NAME, "--from", "8", "--to", "20", "--json");
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ pushlogLastPushId: 9, from: 8, to: 9, missing: 2, job: { outcome: "added", fromPushId: 8, toPushId: 9 } });
    const done = await jobs.finished(summary.job.jobId);
    expect(done.returnvalue).toMatchObject({ pushesStored: 3, lastPushId: 9 });
    expect(await storedPushes()).toEqual(pushNodes);
    expect((await env.db.repository.findUniqueOrThrow({ where: { id: repositoryId } })).lastPushId).toBe(9);
  }, 60_000);

  it("refuses an untracked repository, a reversed range and a host no longer in ALLOWED_HOSTS", async () => {
    const untracked = await cli("ingest", "pushes", "l10n-central/xx").then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(untracked?.code).toBe(1);
    expect(untracked?.stderr).toContain("l10n-central/xx is not a tracked repository (track it first: pulse-bridge track repo URL)");
    const reversed = await cli("ingest", "pushes", NAME, "--from", "5", "--to", "2").then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(reversed?.stderr).toContain("--from must not be above --to");
    // ALLOWED_HOSTS changed since the repository was tracked: its pushlog is not asked.
    const requests = hg.requests.length;
    const refused = await cliWith({ ALLOWED_HOSTS: "hg.mozilla.org" }, "ingest", "pushes", NAME).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused?.stderr).toMatch(/pushlog of .*: refused: host 127\.0\.0\.1:\d+ is not one of ALLOWED_HOSTS/);
    expect(hg.requests.length).toBe(requests);
  }, 60_000);
});
