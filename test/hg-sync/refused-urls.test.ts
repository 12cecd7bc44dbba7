import { access, chmod, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trackForest, trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { clonePathFor } from "../../src/vcs/clone-path.ts";
import { checkRepositoryUrl } from "../../src/vcs/url-policy.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { message, openQueue, spawnWorker } from "./harness.ts";

let env: TestEnvironment;
let jobs: ReturnType<typeof openQueue>;
let worker: ReturnType<typeof spawnWorker>;
let shims: string;
const sentinel = path.join(tmpdir(), `pb-pwned-${process.pid}-${Date.now()}`);

beforeAll(async () => {
  env = await createTestEnvironment("hg-refused");
  jobs = openQueue(env.config);
  // hg and git on the worker's PATH record every invocation before running
  // the real tool: "nothing spawned" is checked, not assumed.
  shims = await mkdtemp(path.join(tmpdir(), "pb-shims-"));
  for (const tool of ["hg", "git", "chg"]) {
    const file = path.join(shims, tool);
    await writeFile(file, `#!/bin/sh\necho "${tool} $*" >> "${shims}/calls.log"\nPATH="${process.env.PATH}" exec ${tool} "$@"\n`);
    await chmod(file, 0o755);
  }
  worker = spawnWorker(env.env, { extraEnv: { PATH: `${shims}:${process.env.PATH}` } });
  await worker.started();
});

afterAll(async () => {
  await worker?.stop();
  await jobs?.close();
  await env?.cleanup();
});

const BAD_URLS = [
  "http://127.0.0.1:9/../../../etc",
  "http://127.0.0.1:9/l10n/%2e%2e/%2e%2e/etc",
  `ext::sh -c touch% ${sentinel}`,
  "file:///etc",
  `--upload-pack=touch ${sentinel}`,
  "https://evil.example.com/repo",
  "http://user:secret@127.0.0.1:9/repo",
];

describe("refused repository URLs", () => {
  it("the policy refuses each of them and clone paths never leave CLONES_DIR", () => {
    for (const url of BAD_URLS) expect(() => checkRepositoryUrl(url, ["127.0.0.1"]), url).toThrow(/refused repository URL/);
    expect(checkRepositoryUrl("https://hg.mozilla.org/l10n-central/de/", ["hg.mozilla.org"])).toBe("https://hg.mozilla.org/l10n-central/de");
    for (const url of [...BAD_URLS, "https://hg.mozilla.org/..", "https://h/a/./b//c", "https://h/%00x", "not a url", `https://h/${"x".repeat(500)}`]) {
      const target = clonePathFor(env.clonesDir, url);
      expect(target.startsWith(env.clonesDir + path.sep), url).toBe(true);
      expect(path.relative(env.clonesDir, target).split(path.sep)).toHaveLength(2);
    }
    expect(clonePathFor("/c", "https://hg.mozilla.org/l10n-central/de")).toMatch(/^\/c\/hg\.mozilla\.org\/l10n-central--de-[0-9a-f]{10}$/);
  });

  it("track refuses them with a clear message", async () => {
    for (const url of BAD_URLS) await expect(trackRepository(env.db, env.config.clones.allowedHosts, url)).rejects.toThrow(/refused repository URL/);
  });

  it("jobs for them fail permanently with the reason, spawn nothing and write nothing", async () => {
    // Rows as a hand edit (or an ALLOWED_HOSTS change) could leave them.
    let n = 0;
    for (const url of BAD_URLS) {
      await env.db.repository.create({ data: { name: `bad-${n++}`, url, kind: url.includes("pack") || url.startsWith("ext") ? "git" : "hg" } });
    }
    await trackForest(env.db, ["127.0.0.1"], "l10n", "http://127.0.0.1:9/l10n");
    const ids: string[] = [];
    for (const url of BAD_URLS) ids.push(await jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [1], message: message("x") }));
    ids.push(await jobs.add({ kind: "hg-newrepo", repoUrl: "http://127.0.0.1:9/l10n/%2e%2e/%2e%2e/etc", message: message("l10n/..") }));
    for (const id of ids) {
      const job = await jobs.finished(id);
      expect(await job.getState(), id).toBe("failed");
      expect(job.failedReason, id).toMatch(/refused repository URL/);
      expect(job.attemptsMade, id).toBe(1);
    }
    expect(await readFile(path.join(shims, "calls.log"), "utf8").catch(() => "")).toBe("");
    expect(await readdir(env.clonesDir)).toEqual([]);
    await expect(access(sentinel)).rejects.toThrow();
    expect(await env.db.repository.count({ where: { forestId: { not: null } } })).toBe(0);
  });
});
