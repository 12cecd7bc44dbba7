/**
 * hgpushes newrepo.1 is forgeable by anyone who can publish on the exchange:
 * a new repository under a tracked Forest is tracked only once it answers.
 * Against a real `hg serve` stand-in: a repository the server does not have
 * (404) and a Forest on a port nobody listens on leave no Repository row, and
 * their jobs end failed for good with a clear reason once their (here
 * shortened) attempts are used up, so nothing retries them afterwards; a
 * repository that answers is tracked as before.
 */
import type { Job } from "bullmq";
import { describe, expect, it } from "vitest";
import type { HgSyncJob } from "../../src/contract/contracts.ts";
import { hgSyncJobRequest } from "../../src/contract/job-requests.ts";
import { trackForest } from "../../src/jobs/hg-sync/tracking.ts";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { waitFor } from "../support/wait-for.ts";
import { message, useHgSyncSetting } from "./harness.ts";

const t = useHgSyncSetting("hg-newrepo-unreachable", { hg: true });

/** Adds a newrepo job as the bridge would, with 2 quick attempts instead of the queue's 8 over ~10 minutes. */
async function addNewrepo(repoUrl: string): Promise<string> {
  const request = hgSyncJobRequest({ kind: "hg-newrepo", repoUrl, message: message(repoUrl) });
  await t.jobs.queue.add(request.name, request.data, { ...request.opts, attempts: 2, backoff: { type: "fixed", delay: 100 } });
  return request.opts.jobId;
}

async function failedForGood(jobId: string): Promise<Job<HgSyncJob>> {
  return waitFor(
    `job ${jobId} to fail for good`,
    async () => {
      const job = await t.jobs.queue.getJob(jobId);
      return job && (await job.getState()) === "failed" ? job : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

describe("newrepo.1 under a tracked forest", () => {
  it("a repository that does not answer is never tracked, and its job gives up with a clear reason", async () => {
    await trackForest(t.env.db, t.env.config.clones.allowedHosts, "l10n-forest", `${t.hg.url}/forest`);
    const deadPort = await freePort();
    await trackForest(t.env.db, t.env.config.clones.allowedHosts, "dead-forest", `http://127.0.0.1:${deadPort}/dead`);
    const missing = t.hg.repoUrl("forest/never-created");
    const unreachable = `http://127.0.0.1:${deadPort}/dead/xx`;

    const ids = [await addNewrepo(missing), await addNewrepo(unreachable)];
    const failed = [await failedForGood(ids[0]!), await failedForGood(ids[1]!)];
    // Not tracked: no row, so nothing pokes them again.
    for (const url of [missing, unreachable]) expect(await t.env.db.repository.findFirst({ where: { url } }), url).toBeNull();
    for (const job of failed) {
      expect(job.attemptsMade).toBe(2);
      expect(job.failedReason).toMatch(/^new repository not tracked: its first clone failed 2 time\(s\); last error: /);
    }
    // The periodic reconcile has nothing of theirs to poke again.
    const reconcile = await t.jobs.finished(await t.jobs.add({ kind: "reconcile", repoUrl: "*" }));
    expect(reconcile.returnvalue).toEqual({ reconciled: 0 });
    expect(await t.env.db.syncRun.count()).toBe(0);
  });

  it("a repository that answers is tracked after its first clone", async () => {
    const url = await t.hg.createRepo("forest/de");
    await t.hg.commit("forest/de", [{ message: "root", files: { "a.ftl": "a\n" } }]);
    const job = await t.jobs.finished(await addNewrepo(url));
    expect(job.failedReason).toBeUndefined();
    expect(await t.env.db.repository.findFirst({ where: { url }, include: { forest: true } })).toMatchObject({
      name: "forest/de",
      kind: "hg",
      forest: { name: "l10n-forest" },
    });
  });
});
