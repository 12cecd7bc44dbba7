import { describe, expect, it } from "vitest";
import { changesetsStored } from "../../src/jobs/hg-sync/metrics.ts";
import { trackForest, trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { diffRevisions } from "../../src/vcs/backends.ts";
import { clonePathFor } from "../../src/vcs/clone-path.ts";
import { message, useHgSyncSetting } from "./harness.ts";

const t = useHgSyncSetting("hg-history", { hg: true });

async function poke(repoUrl: string, pushIds: number[]) {
  const id = await t.jobs.add({ kind: "hg-push", repoUrl, heads: [], pushIds, message: message(repoUrl) });
  return t.jobs.finished(id);
}

/** pulse_bridge_hg_sync_changesets_stored_total{kind} of this process. */
async function changesetsStoredMetric(kind: "hg" | "git"): Promise<number> {
  const metric = await changesetsStored.get();
  return metric.values.find((value) => value.labels.kind === kind)?.value ?? 0;
}

describe("hg-sync history", () => {
  it("stores pushes, merges, branches, renames, deletions and non-UTF-8 descriptions exactly", async () => {
    const url = await t.hg.createRepo("l10n-central/de");
    await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url, { locale: "de" });

    const first = await t.hg.push(
      "l10n-central/de",
      [
        { message: "add a", files: { "a.ftl": "a\n" }, date: "1700000001 0" },
        { message: "add b", files: { "b.ftl": "b\n" }, date: "1700000002 0" },
        { message: "modify a", files: { "a.ftl": "a2\n" }, date: "1700000003 0" },
      ],
      { user: "alice@example.com", date: 1_700_000_010 },
    );
    const base = first.nodes[2]!;
    const second = await t.hg.push(
      "l10n-central/de",
      [
        { parents: [base], branch: "feature", message: "on a branch", files: { "feature.ftl": "f\n" } },
        { parents: [base], message: "default side", files: { "b.ftl": "b2\n" } },
      ],
      { user: "bob@example.com" },
    );
    const [branchNode, defaultNode] = second.nodes as [string, string];
    const third = await t.hg.push("l10n-central/de", [
      { parents: [defaultNode, branchNode], branch: "default", message: "merge feature", files: { "feature.ftl": "f\n" } },
      { messageBase64: Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0xfe, 0x20, 0x62, 0x79, 0x74, 0x65, 0x73]).toString("base64"), files: { "c.ftl": "c\n" } },
      { message: "rename a to renamed, delete b", files: { "renamed.ftl": "a2\n", "a.ftl": null, "b.ftl": null }, copies: { "renamed.ftl": "a.ftl" } },
    ]);

    // Only the newest push is announced: the earlier ones come from the pushlog.
    const job = await poke(url, [3]);
    expect(job.failedReason).toBeUndefined();
    expect(job.returnvalue).toMatchObject({ pushesStored: 3, lastPushId: 3 });

    const repo = await t.env.db.repository.findUniqueOrThrow({ where: { url } });
    expect(repo.lastPushId).toBe(3);
    const pushes = await t.env.db.push.findMany({
      where: { repositoryId: repo.id },
      orderBy: { pushId: "asc" },
      include: { changesets: { orderBy: { position: "asc" }, include: { changeset: true } } },
    });
    expect(pushes.map((p) => [p.pushId, p.user, p.changesets.map((c) => c.changeset.revision)])).toEqual([
      [1, "alice@example.com", first.nodes],
      [2, "bob@example.com", second.nodes],
      [3, "pusher@example.com", third.nodes],
    ]);
    expect(pushes[0]!.pushedAt.toISOString()).toBe(new Date(1_700_000_010_000).toISOString());

    const all = [...first.nodes, ...second.nodes, ...third.nodes];
    expect(await t.env.db.changeset.count()).toBe(all.length);
    expect(await t.env.db.repositoryChangeset.count({ where: { repositoryId: repo.id } })).toBe(all.length);

    const merge = await t.env.db.changeset.findUniqueOrThrow({
      where: { revision: third.nodes[0]! },
      include: { parents: { orderBy: { position: "asc" }, include: { parent: true } }, branch: true },
    });
    expect(merge.parents.map((p) => p.parent.revision)).toEqual([defaultNode, branchNode]);
    expect(merge.branch?.name).toBe("default");
    const onBranch = await t.env.db.changeset.findUniqueOrThrow({
      where: { revision: branchNode },
      include: { branch: true, parents: { include: { parent: true } } },
    });
    expect(onBranch.branch?.name).toBe("feature");
    expect(onBranch.parents.map((p) => p.parent.revision)).toEqual([base]);
    const root = await t.env.db.changeset.findUniqueOrThrow({ where: { revision: first.nodes[0]! }, include: { parents: true } });
    expect(root.parents).toEqual([]);
    expect(root.author).toBe("Test <test@example.com>");
    expect(root.description).toBe("add a");
    expect(root.date?.toISOString()).toBe(new Date(1_700_000_001_000).toISOString());

    const bad = await t.env.db.changeset.findUniqueOrThrow({ where: { revision: third.nodes[1]! } });
    // hg reads bytes that are not UTF-8 as latin-1: replaced, readable, never fatal.
    expect(bad.description).toBe("bad \u00ff\u00fe bytes");

    const filesOf = async (revision: string) =>
      (await t.env.db.changesetFile.findMany({ where: { changeset: { revision } }, include: { file: true } })).map((f) => `${f.action} ${f.file.path}`).sort();
    expect(await filesOf(third.nodes[2]!)).toEqual(["added renamed.ftl", "removed a.ftl", "removed b.ftl"]);
    expect(await filesOf(first.nodes[2]!)).toEqual(["modified a.ftl"]);
    expect(await filesOf(first.nodes[0]!)).toEqual(["added a.ftl"]);

    // Duplicates and older pokes change nothing.
    const before = { pushes: await t.env.db.push.count(), changesets: await t.env.db.changeset.count(), links: await t.env.db.pushChangeset.count() };
    await poke(url, [1]);
    await poke(url, [3]);
    expect({ pushes: await t.env.db.push.count(), changesets: await t.env.db.changeset.count(), links: await t.env.db.pushChangeset.count() }).toEqual(before);
    // The dashboard's diff, served from the clone, bounded.
    const clone = clonePathFor(t.env.clonesDir, url);
    const diff = await diffRevisions("hg", clone, first.nodes[0]!, third.nodes[2]!, { maxBytes: 100_000 });
    expect(diff.truncated).toBe(false);
    expect(diff.text).toContain("renamed.ftl");
    const cut = await diffRevisions("hg", clone, first.nodes[0]!, third.nodes[2]!, { maxBytes: 40 });
    expect(cut).toMatchObject({ truncated: true });
    expect(Buffer.byteLength(cut.text)).toBeLessThanOrEqual(40);
    await expect(diffRevisions("hg", clone, "--config=x", third.nodes[2]!, { maxBytes: 10 })).rejects.toThrow(/not a revision/);

    const runs = await t.env.db.syncRun.findMany({ where: { repositoryId: repo.id } });
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.every((r) => r.outcome === "completed" && r.finishedAt)).toBe(true);
  });

  it("fills in a placeholder changeset instead of adding a second row", async () => {
    const url = await t.hg.createRepo("placeholder-repo");
    await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);
    const { nodes } = await t.hg.push("placeholder-repo", [
      { message: "one", files: { "x.txt": "x\n" } },
      { message: "two", files: { "x.txt": "y\n" } },
    ]);
    // What tc-ingest does when a comparison names a revision not synced yet.
    await t.env.db.$executeRaw`INSERT INTO "Changeset" (revision, placeholder) VALUES (${nodes[1]!}, true) ON CONFLICT (revision) DO NOTHING`;
    const job = await poke(url, [1]);
    expect(job.failedReason).toBeUndefined();
    const rows = await t.env.db.changeset.findMany({
      where: { revision: nodes[1]! },
      include: { parents: { include: { parent: true } }, files: { include: { file: true } } },
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ placeholder: false, description: "two", author: "Test <test@example.com>" });
    expect(rows[0]!.parents.map((p) => p.parent.revision)).toEqual([nodes[0]]);
    expect(rows[0]!.files.map((f) => [f.action, f.file.path])).toEqual([["modified", "x.txt"]]);
  });

  it("creates a new repository under a tracked forest and stores its whole history, without pushes", async () => {
    await trackForest(t.env.db, t.env.config.clones.allowedHosts, "l10n-test", `${t.hg.url}/forest`);
    const url = await t.hg.createRepo("forest/fy-NL");
    const nodes = await t.hg.commit("forest/fy-NL", [
      { message: "root", files: { "a.ftl": "a\n" } },
      { message: "next", files: { "a.ftl": "b\n" } },
    ]);
    const side = await t.hg.commit("forest/fy-NL", [{ parents: [nodes[0]!], branch: "other", message: "second head", files: { "c.ftl": "c\n" } }]);
    const storedBefore = await changesetsStoredMetric("hg");
    const id = await t.jobs.add({ kind: "hg-newrepo", repoUrl: url, message: message("forest/fy-NL") });
    const job = await t.jobs.finished(id);
    expect(job.failedReason).toBeUndefined();
    // Progress for Bull Board and the metric (the pool runs in this process): 3 of the 3 counted in the clone.
    expect(job.progress).toMatchObject({ changesetsStored: 3, alreadyStored: 0, total: 3, percent: 100 });
    expect((await changesetsStoredMetric("hg")) - storedBefore).toBe(3);
    const repo = await t.env.db.repository.findUniqueOrThrow({ where: { url }, include: { locale: true, forest: true } });
    expect(repo).toMatchObject({ name: "forest/fy-NL", kind: "hg", lastPushId: 0 });
    expect(repo.locale?.code).toBe("fy-NL");
    expect(repo.forest?.name).toBe("l10n-test");
    const stored = await t.env.db.repositoryChangeset.findMany({ where: { repositoryId: repo.id }, include: { changeset: true } });
    expect(stored.map((r) => r.changeset.revision).sort()).toEqual([...nodes, ...side].sort());
    expect(await t.env.db.push.count({ where: { repositoryId: repo.id } })).toBe(0);

    // Outside every forest: nothing is created.
    const outside = await t.jobs.finished(await t.jobs.add({ kind: "hg-newrepo", repoUrl: t.hg.repoUrl("elsewhere/x"), message: message("elsewhere/x") }));
    expect(outside.returnvalue).toMatchObject({ skipped: "new repository is not under a tracked forest" });
  });

  it("completes quickly without a clone for an untracked repository", async () => {
    const url = t.hg.repoUrl("not-tracked");
    const job = await poke(url, [5]);
    expect(job.returnvalue).toEqual({ skipped: "repository not tracked", repoUrl: url });
  });

  it("the periodic reconcile pokes every tracked repository", async () => {
    const tracked = await t.env.db.repository.count({ where: { archived: false } });
    const job = await t.jobs.finished(await t.jobs.add({ kind: "reconcile", repoUrl: "*" }));
    expect(job.returnvalue).toEqual({ reconciled: tracked });
    // The worker registered the repeatable job at start.
    const schedulers = await t.jobs.queue.getJobSchedulers();
    expect(schedulers.map((s) => s.key)).toContain("reconcile-all");
  });
});
