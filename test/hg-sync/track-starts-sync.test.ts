/**
 * `pulse-bridge track` starts work at once: with a worker running, a tracked
 * repository's history is stored within seconds (RECONCILE_INTERVAL is an
 * hour here, so only the poke `track` enqueues can bring it), and the
 * forest command pokes the forest's known repositories.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { startWorker } from "./harness.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));

let env: TestEnvironment;
let hg: HgServer;
let worker: Awaited<ReturnType<typeof startWorker>> | undefined;

beforeAll(async () => {
  env = await createTestEnvironment("track-sync", { RECONCILE_INTERVAL: "1h" });
  hg = await startHgServer();
  worker = await startWorker(env.config);
});

afterAll(async () => {
  await worker?.stop();
  await hg?.close();
  await env?.cleanup();
});

async function cli(...args: string[]) {
  return run(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: root, env: { ...process.env, ...env.env } });
}

async function storedPushes(url: string): Promise<number | undefined> {
  const repo = await env.db.repository.findUnique({ where: { url }, include: { _count: { select: { pushes: true, changesets: true } } } });
  return repo?.lastSyncedAt ? repo._count.pushes : undefined;
}

describe("track starts work at once", () => {
  it("track repo enqueues the first sync, says so, and the worker stores the history", async () => {
    const url = await hg.createRepo("l10n-central/fr");
    const first = await hg.push("l10n-central/fr", [{ message: "one", files: { "a.ftl": "a\n" } }]);
    const second = await hg.push("l10n-central/fr", [
      { message: "two", files: { "b.ftl": "b\n" } },
      { message: "three", files: { "a.ftl": "a2\n" } },
    ]);

    const { stdout } = await cli("track", "repo", url, "--json");
    const result = JSON.parse(stdout) as { repository: { url: string }; sync: { requested: boolean; jobId: string; added: boolean } };
    expect(result.sync).toMatchObject({ requested: true, added: true, repoUrl: url });
    expect(result.sync.jobId).toMatch(/^reconcile\|/);

    await waitFor("the tracked repository's history to be stored", async () => (await storedPushes(url)) === 2, { timeoutMs: 30_000 });
    const repo = await env.db.repository.findUniqueOrThrow({ where: { url } });
    expect(repo.lastPushId).toBe(second.pushId);
    const revisions = await env.db.changeset.findMany({ where: { repositories: { some: { repositoryId: repo.id } } }, select: { revision: true } });
    expect(revisions.map((r) => r.revision).sort()).toEqual([...first.nodes, ...second.nodes].sort());
  });

  it("says what it did in text, and --no-sync only records the row", async () => {
    const url = await hg.createRepo("l10n-central/it");
    const { stdout } = await cli("track", "repo", url, "--no-sync");
    expect(stdout).toContain(`tracking hg repository l10n-central/it at ${url}`);
    expect(stdout).toContain("--no-sync: its first clone waits for the next reconcile (within 60m) or push");
    const { stdout: json } = await cli("track", "repo", url, "--no-sync", "--json");
    expect(JSON.parse(json).sync).toEqual({ requested: false });
  });

  it("a Redis that does not answer fails the command after recording the row, and says what to do", async () => {
    const url = await hg.createRepo("l10n-central/es");
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const failure = await run(process.execPath, ["--import", "tsx", "src/cli.ts", "track", "repo", url], {
      cwd: root,
      env: { ...process.env, ...env.env, REDIS_URL: closed },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(
      /^pulse-bridge: tracked, but the first sync could not be enqueued \(Redis: .*\): run the command again once Redis answers, or the next reconcile \(within 60m\) syncs it\n$/,
    );
    expect(await env.db.repository.findUnique({ where: { url } })).not.toBeNull();
  });

  it("track forest pokes the forest's known repositories, and says when it knows none", async () => {
    const forestUrl = hg.repoUrl("l10n-beta");
    const empty = await cli("track", "forest", "l10n-beta", forestUrl);
    expect(empty.stdout).toContain("no tracked repositories yet: new ones arrive by hgpushes newrepo messages");

    const url = await hg.createRepo("l10n-beta/de");
    await hg.push("l10n-beta/de", [{ message: "one", files: { "a.ftl": "a\n" } }]);
    await cli("track", "repo", url, "--forest", "l10n-beta", "--no-sync");
    const { stdout } = await cli("track", "forest", "l10n-beta", forestUrl, "--json");
    const result = JSON.parse(stdout) as { repositories: number; sync: { requested: boolean; jobs: Array<{ repoUrl: string }> } };
    expect(result.repositories).toBe(1);
    expect(result.sync.jobs.map((j) => j.repoUrl)).toEqual([url]);
    await waitFor("the forest's repository to be synced", async () => (await storedPushes(url)) === 1, { timeoutMs: 30_000 });
  });
});
