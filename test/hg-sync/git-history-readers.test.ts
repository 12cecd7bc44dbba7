/**
 * The incremental readers of git's history output give the same records
 * however the output is cut into chunks (down to one byte), keep at most
 * MAX_OBJECT_BYTES of an absurd commit and go on with the next one, and
 * report output that ends mid-answer instead of inventing records.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CatFileAnswer, CatFileBatchReader, DiffTreeReader, MAX_OBJECT_BYTES, parseCommitObject } from "../../src/vcs/git-history.ts";
import { seededRandom } from "../support/seeded-random.ts";

let root: string;
let repo: string;
const commits: string[] = [];

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
const git = (args: string[], input?: Buffer | string) => execFileSync("git", ["--git-dir", repo, ...args], { env, input, maxBuffer: 64 * 1024 * 1024 });

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "pb-git-readers-"));
  repo = path.join(root, "r.git");
  execFileSync("git", ["init", "-q", "--bare", repo], { env });
  let parent: string | undefined;
  const messages = [
    Buffer.from("root\n"),
    Buffer.from(`\x1e${"a".repeat(40)}\0x\n`),
    Buffer.alloc(MAX_OBJECT_BYTES + 4096, "m"),
    Buffer.from("after the big one\n"),
  ];
  for (const [i, body] of messages.entries()) {
    const blob = git(["hash-object", "-w", "--stdin"], `content ${i}\n`).toString().trim();
    // A file name with \x1e and a newline (mktree -z: entries end with NUL).
    const tree = git(["mktree", "-z"], Buffer.from(`100644 blob ${blob}\tfile\x1e${i}\n\0`))
      .toString()
      .trim();
    const raw = Buffer.concat([
      Buffer.from(
        `tree ${tree}\n${parent ? `parent ${parent}\n` : ""}author A <a@example.com> ${1700000000 + i} +0000\ncommitter A <a@example.com> 1700000000 +0000\n\n`,
      ),
      body,
    ]);
    parent = git(["hash-object", "-t", "commit", "-w", "--literally", "--stdin"], raw).toString().trim();
    commits.push(parent);
  }
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function feed<T extends { push(chunk: Buffer): void }>(reader: T, output: Buffer, cut: (offset: number) => number): T {
  for (let offset = 0; offset < output.length; ) {
    const size = Math.max(1, Math.min(cut(offset), output.length - offset));
    reader.push(output.subarray(offset, offset + size));
    offset += size;
  }
  return reader;
}

describe("git history readers", () => {
  it("read the same records whatever the chunking, and bound an absurd commit", () => {
    const input = `${[...commits, "f".repeat(40)].join("\n")}\n`;
    const catFile = git(["cat-file", "--batch"], input);
    const diffTree = git(["diff-tree", "--stdin", "-z", "-r", "--root", "--no-renames", "--name-status"], `${commits.join("\n")}\n`);
    const next = seededRandom(7);
    const random = () => Math.floor(next() * 70_000);
    const results = [() => catFile.length, () => 1, random].map((cut) => {
      const answers: CatFileAnswer[] = [];
      const objects = feed(new CatFileBatchReader((a) => answers.push(a)), catFile, cut);
      expect(objects.end()).toBe(commits.length + 1);
      const files = feed(new DiffTreeReader(), diffTree, cut).end();
      return answers.map((a) => ("missing" in a ? a : { ...parseCommitObject(a.oid, a.body, files.get(a.oid) ?? []), truncated: a.truncated, size: a.size }));
    });
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    const [first, second, big, after, missing] = results[0] as Array<Record<string, unknown>>;
    expect(first).toMatchObject({ revision: commits[0], description: "root", parents: [], files: [{ path: "file\x1e0\n", action: "added" }] });
    expect(second).toMatchObject({ revision: commits[1], description: `\x1e${"a".repeat(40)}\uFFFDx`, parents: [commits[0]], truncated: false });
    expect(big).toMatchObject({ revision: commits[2], truncated: true, parents: [commits[1]] });
    expect((big!.description as string).length).toBeLessThan(MAX_OBJECT_BYTES);
    expect(after).toMatchObject({ revision: commits[3], description: "after the big one", author: "A <a@example.com>", parents: [commits[2]] });
    expect(missing).toEqual({ missing: "f".repeat(40) });
  });

  it("parse authors as git does: ASCII spaces only, a stray '>', a date only with its time zone", () => {
    const commit = (author: string) =>
      parseCommitObject("a".repeat(40), Buffer.from(`tree ${"b".repeat(40)}\nauthor ${author}\ncommitter C <c@x> 1 +0000\n\nm\n`), []);
    expect(commit("Voilà <v@example.com> 1700000000 +0000")).toMatchObject({ author: "Voilà <v@example.com>", date: new Date(1_700_000_000_000) });
    expect(commit("Tab\t <t@example.com> 5 -0130")).toMatchObject({ author: "Tab <t@example.com>", date: new Date(5000) });
    expect(commit("Odd <a>b@example.com> 7 +0000")).toMatchObject({ author: "Odd <a>", date: new Date(7000) });
    expect(commit("No zone <n@example.com> 1700000000")).toMatchObject({ author: "No zone <n@example.com>", date: new Date(0) });
    expect(commit("nobody")).toMatchObject({ author: " <>", date: new Date(0) });
  });

  it("refuse output that ends inside an answer or is not cat-file's", () => {
    const catFile = git(["cat-file", "--batch"], `${commits[0]}\n`);
    const cutShort = new CatFileBatchReader(() => {});
    cutShort.push(catFile.subarray(0, catFile.length - 2));
    expect(() => cutShort.end()).toThrow(/ends inside an answer/);
    const garbage = new CatFileBatchReader(() => {});
    garbage.push(Buffer.from("not a header\n"));
    expect(() => garbage.end()).toThrow(/unexpected cat-file line/);
    const diffs = new DiffTreeReader();
    diffs.push(Buffer.from(`${commits[0]}\0A\0`));
    expect(() => diffs.end()).toThrow(/ends inside an entry/);
  });
});
