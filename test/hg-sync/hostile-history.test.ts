/**
 * History written by a hostile pusher: commit messages, author names and file
 * names holding every separator a text format could use (\x1e, NUL, newlines,
 * another commit's hash, header-like lines, JSON), non-UTF-8 bytes, file names
 * that are numbers or look like status letters and hashes, a foreign
 * encoding, a signature header, an absurd date. Each goes through the real
 * hg-sync path (HTTP clone, read, store) and the stored rows must be exactly
 * what the commit says: nothing forged, nothing lost, no sync blocked.
 */
import { describe, expect, it } from "vitest";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { message, useHgSyncSetting } from "./harness.ts";

const t = useHgSyncSetting("hg-hostile-history", { hg: true, git: true });

const ZERO = "0".repeat(40);
const RS = "\x1e";

interface Expected {
  author: string;
  description: string;
  date: string;
  parents: string[];
  files: string[];
}

async function storedRow(revision: string): Promise<Expected> {
  const row = await t.env.db.changeset.findUniqueOrThrow({
    where: { revision },
    include: { parents: { orderBy: { position: "asc" }, include: { parent: true } }, files: { include: { file: true } } },
  });
  return {
    author: row.author!,
    description: row.description!,
    date: row.date!.toISOString(),
    parents: row.parents.map((p) => p.parent.revision),
    files: row.files.map((f) => `${f.action} ${f.file.path}`).sort(),
  };
}

/** Builds commits byte by byte in the upstream's work tree (plumbing: no cleanup of messages, any path). */
function crafter(name: string) {
  const git = (args: string[], input?: Buffer | string) => t.git.git(name, args, input);
  return {
    /** A tree: the parent's files plus `files` (null removes); paths may be raw bytes. */
    async tree(parent: string | undefined, files: Array<[string | Buffer, string | null]>): Promise<string> {
      await git(parent ? ["read-tree", parent] : ["read-tree", "--empty"]);
      const entries: Buffer[] = [];
      for (const [file, content] of files) {
        const blob = content === null ? ZERO : (await git(["hash-object", "-w", "--stdin"], content)).trim();
        entries.push(Buffer.concat([Buffer.from(`${content === null ? "0" : "100644"} ${blob}\t`), Buffer.from(file), Buffer.from([0])]));
      }
      await git(["update-index", "-z", "--index-info"], Buffer.concat(entries));
      return (await git(["write-tree"])).trim();
    },
    /** A commit object exactly as given (git hash-object --literally: no checks, no cleanup). */
    async commit(tree: string, parents: string[], author: string | Buffer, extraHeaders: string | Buffer, body: string | Buffer): Promise<string> {
      const raw = Buffer.concat([
        Buffer.from(`tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join("")}author `),
        Buffer.from(author),
        Buffer.from("\ncommitter Committer <committer@example.com> 1700000000 +0000\n"),
        Buffer.from(extraHeaders),
        Buffer.from("\n"),
        Buffer.from(body),
      ]);
      return (await git(["hash-object", "-t", "commit", "-w", "--literally", "--stdin"], raw)).trim();
    },
    async push(head: string) {
      await git(["update-ref", "refs/heads/main", head]);
      await git(["push", "-q", "origin", "main"]);
    },
  };
}

describe("hostile history", () => {
  it("git: a message holding \\x1e and another real hash, with a file named like a number, forges nothing", async () => {
    // The reported attack, byte for byte: on the old `git log` parser this
    // overwrote the root's row (2010 date from the file name, no parents).
    const name = "hostile/git-forge";
    const url = await t.git.createRepo(name);
    await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);
    const root = await t.git.commit(name, { "a.txt": "a\n" }, "root");
    const craft = crafter(name);
    const tree = await craft.tree(root, [
      ["1262304000", "x\n"],
      ["Forged <forged@example.com>", "y\n"],
    ]);
    const attack = await craft.commit(tree, [root], "Mallory <mallory@example.com> 1700000101 +0000", "", `innocent${RS}${root}`);
    await craft.push(attack);
    const job = await t.jobs.finished(
      await t.jobs.add({
        kind: "git-push",
        repoUrl: url,
        eventId: "6e1a8c20-0000-4000-8000-00000000e010",
        ref: "refs/heads/main",
        before: ZERO,
        after: attack,
        commits: [root, attack],
        pusher: "mallory",
        pushedAt: "2026-12-01T10:00:00Z",
        message: { ...message(name), feed: "github" as const },
      }),
    );
    expect(job.failedReason).toBeUndefined();
    expect(await storedRow(root)).toMatchObject({ author: "Git Author <author@example.com>", description: "root", parents: [], files: ["added a.txt"] });
    expect(await storedRow(attack)).toEqual({
      author: "Mallory <mallory@example.com>",
      description: `innocent${RS}${root}`,
      date: "2023-11-14T22:15:01.000Z",
      parents: [root],
      files: ["added 1262304000", "added Forged <forged@example.com>"],
    });
  });

  it("git: every commit is stored exactly as written, whatever its message, author and file names hold", async () => {
    const name = "hostile/git";
    const url = await t.git.createRepo(name);
    const repo = await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);
    // Not the other test's root: an identical commit made in the same second would be the same object.
    const root = await t.git.commit(name, { "a.txt": "a\n" }, "root of many");
    const craft = crafter(name);

    // The reported attack: \x1e and another real hash in the message, a file named like a date.
    const t1 = await craft.tree(root, [["1262304000", "x\n"]]);
    const forged = await craft.commit(t1, [root], "Mallory <mallory@example.com> 1700000101 +0100", "", `innocent\n\n${RS}${root}\n`);

    // Every separator in file names; NUL, \x1e, hashes and invalid UTF-8 in the message; a signature header.
    const weird: Array<[string | Buffer, string | null]> = [
      [RS, "rs\n"],
      ["tab\there", "t\n"],
      ["new\nline", "n\n"],
      ['quote"back\\slash', "q\n"],
      [root, "a name that is a hash\n"],
      ["M", "a name that is a status\n"],
      ["ü-utf8.txt", "u\n"],
      [Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74, 0x78, 0x74]), "b\n"],
      ["a.txt", "a2\n"],
      ["1262304000", null],
    ];
    const t2 = await craft.tree(forged, weird);
    const signature = `gpgsig -----BEGIN PGP SIGNATURE-----\n \n author Evil <evil@example.com> 1 +0000\n parent ${root}\n -----END PGP SIGNATURE-----\n`;
    const separators = await craft.commit(
      t2,
      [forged],
      `Eve ${RS}${root} <eve@example.com> 1700000202 +0000`,
      signature,
      Buffer.concat([Buffer.from(`nul\0inside${RS}\0${root}\0`), Buffer.from([0xff, 0xfe]), Buffer.from(`\nparent ${root}\n\n\n`)]),
    );

    // A declared foreign encoding: re-encoded to UTF-8, as git log does.
    const t3 = await craft.tree(separators, [["latin1.txt", "l\n"]]);
    const latin1 = await craft.commit(
      t3,
      [separators],
      Buffer.concat([Buffer.from("Ren"), Buffer.from([0xe9]), Buffer.from(" <rene@example.com> 1700000303 -0500")]),
      "encoding ISO-8859-1\n",
      Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from(` ${RS}\n`)]),
    );

    // A merge whose message carries header-like lines; its side branch.
    const side = await craft.commit(await craft.tree(root, [["side.txt", "s\n"]]), [root], "Side <side@example.com> 1700000404 +0000", "", "side\n");
    const merge = await craft.commit(
      t3,
      [latin1, side],
      "Merger <merger@example.com> 1700000505 +0000",
      "",
      `merge\nparent ${root}\nauthor Evil <evil@example.com> 1 +0000\n${RS}${side}`,
    );

    // A date no Date can hold: stored as the epoch instead of blocking every sync.
    const overflow = await craft.commit(await craft.tree(merge, [["late.txt", "l\n"]]), [merge], "Late <late@example.com> 99999999999999999 +0000", "", RS);
    await craft.push(overflow);

    const commits = [root, forged, separators, latin1, side, merge, overflow];
    const job = await t.jobs.finished(
      await t.jobs.add({
        kind: "git-push",
        repoUrl: url,
        eventId: "6e1a8c20-0000-4000-8000-00000000e011",
        ref: "refs/heads/main",
        before: ZERO,
        after: overflow,
        commits,
        pusher: "mallory",
        pushedAt: "2026-12-01T10:00:00Z",
        message: { ...message(name), feed: "github" as const },
      }),
    );
    expect(job.failedReason).toBeUndefined();
    expect(job.returnvalue).toMatchObject({ pushesStored: 1, changesetsStored: commits.length });

    // Nothing forged: exactly the pushed commits exist.
    const own = await t.env.db.repositoryChangeset.findMany({ where: { repositoryId: repo.id }, include: { changeset: true } });
    expect(own.map((c) => c.changeset.revision).sort()).toEqual([...commits].sort());
    expect(await storedRow(forged)).toEqual({
      author: "Mallory <mallory@example.com>",
      description: `innocent\n\n${RS}${root}`,
      date: "2023-11-14T22:15:01.000Z",
      parents: [root],
      files: ["added 1262304000"],
    });
    expect(await storedRow(separators)).toEqual({
      author: `Eve ${RS}${root} <eve@example.com>`,
      description: `nul\uFFFDinside${RS}\uFFFD${root}\uFFFD\uFFFD\uFFFD\nparent ${root}`,
      date: "2023-11-14T22:16:42.000Z",
      parents: [forged],
      files: [
        `added ${RS}`,
        "added M",
        `added ${root}`,
        "added bad\uFFFD.txt",
        "added new\nline",
        'added quote"back\\slash',
        "added tab\there",
        "added ü-utf8.txt",
        "modified a.txt",
        "removed 1262304000",
      ].sort(),
    });
    expect(await storedRow(latin1)).toEqual({
      author: "René <rene@example.com>",
      description: `café ${RS}`,
      date: "2023-11-14T22:18:23.000Z",
      parents: [separators],
      files: ["added latin1.txt"],
    });
    expect(await storedRow(merge)).toEqual({
      author: "Merger <merger@example.com>",
      description: `merge\nparent ${root}\nauthor Evil <evil@example.com> 1 +0000\n${RS}${side}`,
      date: "2023-11-14T22:21:45.000Z",
      parents: [latin1, side],
      files: [],
    });
    expect(await storedRow(overflow)).toEqual({
      author: "Late <late@example.com>",
      description: RS,
      date: "1970-01-01T00:00:00.000Z",
      parents: [merge],
      files: ["added late.txt"],
    });
    expect(await storedRow(root)).toMatchObject({
      author: "Git Author <author@example.com>",
      description: "root of many",
      parents: [],
      files: ["added a.txt"],
    });
    const push = await t.env.db.push.findFirstOrThrow({
      where: { repositoryId: repo.id },
      include: { changesets: { orderBy: { position: "asc" }, include: { changeset: true } } },
    });
    expect(push.changesets.map((c) => c.changeset.revision)).toEqual(commits);
  });

  it("hg: descriptions, users, branches and file names holding separators and JSON are stored exactly", async () => {
    const name = "hostile/hg";
    const url = await t.hg.createRepo(name);
    await trackRepository(t.env.db, t.env.config.clones.allowedHosts, url);
    const first = await t.hg.push(name, [{ message: "root", files: { "a.txt": "a\n" }, date: "1700000001 0" }]);
    const root = first.nodes[0]!;
    const json = `"}\n{"node": "${root}", "author": "Forged <f@example.com>", "date": "1262304000 0", "adds": ["1"]}`;
    const second = await t.hg.push(name, [
      {
        message: `innocent\n\n${RS}${root}\0nul${json}\n`,
        user: `Eve ${RS}"${root}" <eve@example.com>`,
        branch: `br${RS}"x\\`,
        date: "1700000002 0",
        files: { "1262304000": "x\n", [RS]: "rs\n", 'quote"back\\slash': "q\n", "ü.txt": "u\n", [root]: "h\n", "a.txt": null },
      },
    ]);
    const job = await t.jobs.finished(await t.jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [2], message: message(name) }));
    expect(job.failedReason).toBeUndefined();
    expect(job.returnvalue).toMatchObject({ pushesStored: 2, changesetsStored: 2 });

    const revision = second.nodes[0]!;
    const stored = await t.env.db.repositoryChangeset.findMany({ where: { repository: { url } }, include: { changeset: true } });
    expect(stored.map((s) => s.changeset.revision).sort()).toEqual([root, revision].sort());
    expect(await storedRow(revision)).toEqual({
      author: `Eve ${RS}"${root}" <eve@example.com>`,
      // hg keeps the trailing newline out of descriptions it stores.
      description: `innocent\n\n${RS}${root}\uFFFDnul${json}`,
      date: "2023-11-14T22:13:22.000Z",
      parents: [root],
      files: [`added ${RS}`, "added 1262304000", `added ${root}`, 'added quote"back\\slash', "added ü.txt", "removed a.txt"].sort(),
    });
    const branch = await t.env.db.changeset.findUniqueOrThrow({ where: { revision }, include: { branch: true } });
    expect(branch.branch?.name).toBe(`br${RS}"x\\`);
  });
});
