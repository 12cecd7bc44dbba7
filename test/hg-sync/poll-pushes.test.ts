/**
 * Polling finds pushes too: a git repository followed only by the reconcile
 * gets a Push per branch update once it has history (the first import stays
 * history), and an event for commits a poll already stored adds no second
 * push; nor does a poll for commits an event stored.
 */
import { describe, expect, it } from "vitest";
import type { HgSyncJob } from "../../src/contract/contracts.ts";
import { WEBHOOK_CONNECTION } from "../../src/contract/push-source.ts";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { message, useHgSyncSetting } from "./harness.ts";

const t = useHgSyncSetting("poll-pushes", { git: true });
const REPO = "mozilla-l10n/firefox-l10n-source";
let round = 0;

async function reconcile(repoUrl: string) {
  const jobId = `test-reconcile-${++round}`;
  await t.jobs.queue.add("reconcile", { kind: "reconcile", repoUrl }, { jobId });
  const job = await t.jobs.finished(jobId);
  expect(job.failedReason).toBeUndefined();
  return job.returnvalue as { changesetsStored: number; pushesStored: number };
}

async function pushes(repositoryId: number) {
  const rows = await t.env.db.push.findMany({
    where: { repositoryId },
    orderBy: { pushId: "asc" },
    include: { changesets: { orderBy: { position: "asc" }, include: { changeset: { select: { revision: true } } } } },
  });
  return rows.map((p) => ({ pushId: p.pushId, source: p.source, user: p.user, eventId: p.eventId, revisions: p.changesets.map((c) => c.changeset.revision) }));
}

function gitPush(repoUrl: string, eventId: string, before: string, after: string, commits: string[], via: "pulse" | "webhook"): HgSyncJob {
  const original = { ...message(REPO), feed: "github" as const, ...(via === "webhook" ? { connection: WEBHOOK_CONNECTION } : {}) };
  return {
    kind: "git-push",
    repoUrl,
    eventId,
    ref: "refs/heads/main",
    before,
    after,
    commits,
    pusher: "l10n-bot",
    pushedAt: new Date().toISOString(),
    message: original,
  };
}

describe("pushes found by polling (git)", () => {
  it("the first import is history; later commits become one push per branch update; events and polls never push the same commits twice", async () => {
    const url = await t.git.createRepo(REPO);
    await t.git.commit(REPO, { "en-US/a.ftl": "a\n" }, "c1");
    await t.git.commit(REPO, { "en-US/a.ftl": "a2\n" }, "c2");
    const c3 = await t.git.commit(REPO, { "en-US/b.ftl": "b\n" }, "c3");
    const repo = await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);

    // First import: history, no push.
    expect(await reconcile(url)).toMatchObject({ changesetsStored: 3, pushesStored: 0 });
    expect(await pushes(repo.id)).toEqual([]);
    // Nothing new: nothing stored.
    expect(await reconcile(url)).toMatchObject({ changesetsStored: 0, pushesStored: 0 });

    // Two commits on main, then a new branch `update` with one commit on top.
    const c4 = await t.git.commit(REPO, { "en-US/c.ftl": "c\n" }, "c4");
    const c5 = await t.git.commit(REPO, { "en-US/c.ftl": "c2\n" }, "c5");
    const c6 = await t.git.commit(REPO, { "en-US/d.ftl": "d\n" }, "c6", { branch: "update" });
    const detectedFrom = Date.now();
    expect(await reconcile(url)).toMatchObject({ changesetsStored: 3, pushesStored: 2 });
    const polled = await pushes(repo.id);
    expect(polled).toEqual([
      { pushId: 1, source: "poll", user: "", eventId: null, revisions: [c4, c5] },
      { pushId: 2, source: "poll", user: "", eventId: null, revisions: [c6] },
    ]);
    const detected = await t.env.db.push.findFirstOrThrow({ where: { repositoryId: repo.id, pushId: 1 } });
    expect(detected.pushedAt.getTime()).toBeGreaterThanOrEqual(detectedFrom - 1000);

    // The webhook (or Pulse) event of the push the poll found first: no second push.
    const late = await t.jobs.finished(await t.jobs.add(gitPush(url, "late-event", c3, c5, [c4, c5], "webhook")));
    expect(late.returnvalue).toMatchObject({ pushesStored: 0 });
    expect(await pushes(repo.id)).toHaveLength(2);

    // An event first, then the poll: the event's push only, with its source.
    const c7 = await t.git.commit(REPO, { "en-US/e.ftl": "e\n" }, "c7");
    const early = await t.jobs.finished(await t.jobs.add(gitPush(url, "early-event", c5, c7, [c7], "webhook")));
    expect(early.returnvalue).toMatchObject({ pushesStored: 1, gitPushId: 3 });
    expect(await reconcile(url)).toMatchObject({ changesetsStored: 0, pushesStored: 0 });
    const c8 = await t.git.commit(REPO, { "en-US/f.ftl": "f\n" }, "c8");
    const viaPulse = await t.jobs.finished(await t.jobs.add(gitPush(url, "pulse-event", c7, c8, [c8], "pulse")));
    expect(viaPulse.returnvalue).toMatchObject({ pushesStored: 1, gitPushId: 4 });
    expect((await pushes(repo.id)).slice(2)).toEqual([
      { pushId: 3, source: "webhook", user: "l10n-bot", eventId: "early-event", revisions: [c7] },
      { pushId: 4, source: "pulse", user: "l10n-bot", eventId: "pulse-event", revisions: [c8] },
    ]);
    expect(await t.env.db.repository.findUniqueOrThrow({ where: { id: repo.id } })).toMatchObject({ lastPushId: 4 });
  });

  it("when an event runs a repository's first sync, every branch is imported as history: the next poll finds no push", async () => {
    const name = "mozilla-l10n/firefox-l10n";
    const url = await t.git.createRepo(name);
    const base = await t.git.commit(name, { "de/a.ftl": "a\n" }, "base");
    await t.git.commit(name, { "de/b.ftl": "b\n" }, "on update", { branch: "update" });
    const tip = await t.git.commit(name, { "de/c.ftl": "c\n" }, "on main", { branch: "main" });
    const repo = await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);
    const first = await t.jobs.finished(await t.jobs.add(gitPush(url, "first-event", base, tip, [tip], "webhook")));
    expect(first.returnvalue).toMatchObject({ changesetsStored: 3, pushesStored: 1 });
    expect(await reconcile(url)).toMatchObject({ changesetsStored: 0, pushesStored: 0 });
    expect((await pushes(repo.id)).map((p) => p.source)).toEqual(["webhook"]);
  });
});
