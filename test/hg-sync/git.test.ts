import { describe, expect, it } from "vitest";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { message, useHgSyncSetting } from "./harness.ts";

const t = useHgSyncSetting("git-sync", { git: true });

const ZERO = "0".repeat(40);

describe("hg-sync git repositories", () => {
  it("stores a GitHub push's commits and one Push; a redelivery adds nothing", async () => {
    const url = await t.git.createRepo("mozilla-l10n/firefox-l10n");
    const c1 = await t.git.commit("mozilla-l10n/firefox-l10n", { "de/a.ftl": "a\n", "fr/a.ftl": "a\n" }, "initial");
    const c2 = await t.git.commit("mozilla-l10n/firefox-l10n", { "de/a.ftl": "a2\n" }, "update de");
    const c3 = await t.git.commit("mozilla-l10n/firefox-l10n", { "fr/a.ftl": null, "it/a.ftl": "it\n" }, "remove fr\n\nadd it");
    const repo = await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);
    expect(repo.kind).toBe("git");

    const event = {
      kind: "git-push" as const,
      repoUrl: url,
      eventId: "6e1a8c20-0000-4000-8000-000000000001",
      ref: "refs/heads/main",
      before: ZERO,
      after: c3,
      commits: [c1, c2, c3],
      pusher: "octocat",
      pushedAt: "2026-11-23T10:00:00Z",
      message: { ...message("mozilla-l10n/firefox-l10n"), feed: "github" as const },
    };
    const job = await t.jobs.finished(await t.jobs.add(event));
    expect(job.failedReason).toBeUndefined();
    expect(job.returnvalue).toMatchObject({ pushesStored: 1, gitPushId: 1, changesetsStored: 3 });

    const pushes = await t.env.db.push.findMany({
      where: { repositoryId: repo.id },
      include: { changesets: { orderBy: { position: "asc" }, include: { changeset: true } } },
    });
    expect(pushes).toHaveLength(1);
    expect(pushes[0]).toMatchObject({ pushId: 1, user: "octocat", eventId: event.eventId });
    expect(pushes[0]!.changesets.map((c) => c.changeset.revision)).toEqual([c1, c2, c3]);
    const last = await t.env.db.changeset.findUniqueOrThrow({
      where: { revision: c3 },
      include: { parents: { include: { parent: true } }, files: { include: { file: true } } },
    });
    expect(last).toMatchObject({ author: "Git Author <author@example.com>", description: "remove fr\n\nadd it", placeholder: false });
    expect(last.parents.map((p) => p.parent.revision)).toEqual([c2]);
    expect(last.files.map((f) => `${f.action} ${f.file.path}`).sort()).toEqual(["added it/a.ftl", "removed fr/a.ftl"]);

    // Redelivery (new job id forced, as a replay would do): nothing added.
    await t.jobs.queue.add("git-push", event, { jobId: "git-redelivery-1" });
    const again = await t.jobs.finished("git-redelivery-1");
    expect(again.returnvalue).toMatchObject({ pushesStored: 0, gitPushId: 1 });
    expect(await t.env.db.push.count({ where: { repositoryId: repo.id } })).toBe(1);

    // A second event: the next push number, only its new commit.
    const c4 = await t.git.commit("mozilla-l10n/firefox-l10n", { "de/b.ftl": "b\n" }, "add de/b");
    const second = await t.jobs.finished(await t.jobs.add({ ...event, eventId: "6e1a8c20-0000-4000-8000-000000000002", before: c3, after: c4, commits: [c4] }));
    expect(second.returnvalue).toMatchObject({ pushesStored: 1, gitPushId: 2, changesetsStored: 1 });
    expect(await t.env.db.changeset.count()).toBe(4);
  });
});
