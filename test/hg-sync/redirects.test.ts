/**
 * Hostile servers on an allowed host: redirects to hosts outside
 * ALLOWED_HOSTS, bodies and messages a server wants shown to operators, and a
 * machine-wide git configuration that would send clones elsewhere.
 *
 * A real front server on 127.0.0.1:<front> (the only allowed host) redirects,
 * proxies to a real `hg serve` / `git http-backend`, or answers with a marker
 * text. The redirect targets are real hg and git servers on other ports (not
 * allowed) that record every request: they must receive none. Jobs run in a
 * real worker process whose `git` sees a system gitconfig (GIT_CONFIG_SYSTEM
 * set by a wrapper on PATH, standing in for /etc/gitconfig) that rewrites
 * the front's URLs to the forbidden server and installs a credential helper.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { type DashboardHandle, startDashboard } from "../../src/dashboard/server.ts";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type GitUpstream, startGitUpstream } from "../../src/stand-ins/git-upstream.ts";
import { type HgServer, startHgServer } from "../../src/stand-ins/hg-server.ts";
import { gitBackend } from "../../src/vcs/git.ts";
import { hgBackend } from "../../src/vcs/hg.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { message, openQueue, spawnWorker } from "./harness.ts";

const MARKER = "SERVER-SAID-f00dfeed";
const ZERO = "0".repeat(40);

let env: TestEnvironment;
let hgAllowed: HgServer;
let hgForbidden: HgServer;
let gitAllowed: GitUpstream;
let gitForbidden: GitUpstream;
let front: http.Server;
let frontUrl: string;
let allowedHosts: string;
let shims: string;
let worker: ReturnType<typeof spawnWorker>;
let jobs: ReturnType<typeof openQueue>;
let lifecycle: Lifecycle;
let dashboard: DashboardHandle;

function proxy(req: http.IncomingMessage, res: http.ServerResponse, target: string, pathAndQuery: string) {
  const url = new URL(target);
  const upstream = http.request(
    { host: url.hostname, port: url.port, method: req.method, path: pathAndQuery, headers: { ...req.headers, host: url.host } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
}

function pkt(line: string): string {
  return (line.length + 4).toString(16).padStart(4, "0") + line;
}

beforeAll(async () => {
  hgAllowed = await startHgServer();
  hgForbidden = await startHgServer();
  gitAllowed = await startGitUpstream();
  gitForbidden = await startGitUpstream();
  for (const server of [hgAllowed, hgForbidden]) {
    await server.createRepo("l10n/de");
    await server.push("l10n/de", [{ message: "one", files: { "a.ftl": "a\n" } }]);
  }
  for (const server of [gitAllowed, gitForbidden]) {
    await server.createRepo("org/repo");
    await server.commit("org/repo", { "a.ftl": "a\n" }, "one");
  }

  front = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const [, route, ...rest] = url.pathname.split("/");
    const tail = `/${rest.join("/")}${url.search}`;
    // The pushlog (HTTP code of another part) answers empty here: only hg and git are under test.
    if (url.pathname.endsWith("/json-pushes")) {
      res.writeHead(200, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ lastpushid: 0, pushes: {} }));
    }
    const redirect = (status: number, location: string) => {
      res.writeHead(status, { location, "content-type": "text/plain" });
      res.end(`${MARKER} redirecting`);
    };
    switch (route) {
      case "hg":
        return proxy(req, res, hgAllowed.url, tail);
      case "git":
        return proxy(req, res, gitAllowed.url, tail);
      case "hg-moved":
        return redirect(301, `${frontUrl}/hg${tail}`);
      case "git-moved":
        return redirect(301, `${frontUrl}/git${tail}`);
      case "hg-away":
        return redirect(302, `${hgForbidden.url}${tail}`);
      case "git-away":
        return redirect(301, `${gitForbidden.url}${tail}`);
      case "hg-body":
        res.writeHead(200, { "content-type": "text/html" });
        return void res.end(`<html><body>${MARKER}\n---%<---\n${MARKER} again</body></html>`);
      case "hg-500":
        res.writeHead(500, MARKER, { "content-type": "text/plain" });
        return void res.end(MARKER);
      case "git-err":
        res.writeHead(200, { "content-type": "application/x-git-upload-pack-advertisement", "cache-control": "no-cache" });
        return void res.end(`${pkt("# service=git-upload-pack\n")}0000${pkt(`ERR ${MARKER} internal host 10.0.0.7\n`)}`);
      case "git-plain":
        res.writeHead(403, { "content-type": "text/plain" });
        return void res.end(`${MARKER} line one\n${MARKER} line two\n`);
      default:
        res.writeHead(404);
        res.end();
    }
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  const port = (front.address() as AddressInfo).port;
  frontUrl = `http://127.0.0.1:${port}`;
  allowedHosts = `127.0.0.1:${port}`;

  env = await createTestEnvironment("hg-redirects");
  jobs = openQueue(env.config);

  // A system gitconfig the worker's git would read if it read any: every
  // fetch of the front rewritten to the forbidden server, and a credential helper.
  shims = await mkdtemp(path.join(tmpdir(), "pb-git-system-"));
  const systemConfig = path.join(shims, "gitconfig");
  await writeFile(
    systemConfig,
    `[url "${gitForbidden.url}/"]\n\tinsteadOf = ${frontUrl}/git/\n[credential]\n\thelper = "!f() { echo used >> ${shims}/helper.log; }; f"\n[http]\n\tfollowRedirects = true\n`,
  );
  await writeFile(path.join(shims, "git"), `#!/bin/sh\nGIT_CONFIG_SYSTEM="${systemConfig}" PATH="${process.env.PATH}" exec git "$@"\n`);
  await chmod(path.join(shims, "git"), 0o755);
  worker = spawnWorker(env.env, { extraEnv: { ALLOWED_HOSTS: allowedHosts, PATH: `${shims}:${process.env.PATH}` } });
  await worker.started();

  const log = createLogger("silent", "test");
  lifecycle = new Lifecycle(log);
  dashboard = await startDashboard({ config: env.configWith({ DASHBOARD_PORT: "0", ALLOWED_HOSTS: allowedHosts }), log, lifecycle });
});

afterAll(async () => {
  await worker?.stop();
  await lifecycle?.shutdown("test done");
  await jobs?.close();
  front?.closeAllConnections();
  await new Promise<void>((resolve) => (front ? front.close(() => resolve()) : resolve()));
  for (const server of [hgAllowed, hgForbidden, gitAllowed, gitForbidden]) await server?.close();
  if (shims) await rm(shims, { recursive: true, force: true });
  await env?.cleanup();
});

const log = createLogger("silent", "test");

async function track(url: string) {
  return trackRepository(env.db, allowedHosts.split(","), url);
}

/** Runs a sync job for `url` until its first attempt failed or it completed. */
async function sync(url: string, kind: "hg" | "git") {
  const id =
    kind === "hg"
      ? await jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [1], message: message("l10n/de") })
      : await jobs.add({
          kind: "git-push",
          repoUrl: url,
          eventId: `6e1a8c20-0000-4000-8000-${String(Date.now()).slice(-12)}`,
          ref: "refs/heads/main",
          before: ZERO,
          after: "1".repeat(40),
          commits: ["1".repeat(40)],
          pusher: "mallory",
          pushedAt: "2026-12-01T10:00:00Z",
          message: { ...message("org/repo"), feed: "github" as const },
        });
  const job = await jobs.finished(id, 60_000);
  return { id, job, reason: job.failedReason ?? "" };
}

/** Everything an operator can read about a failed job: BullMQ's reason and stack, JobRecord, /api/jobs. */
async function visibleTexts(id: string): Promise<string> {
  const job = (await jobs.queue.getJob(id))!;
  const records = await waitFor(`job record of ${id}`, async () => {
    const rows = await env.db.jobRecord.findMany({ where: { queue: "hg-sync", jobId: id } });
    return rows.some((r) => r.error) ? rows : undefined;
  });
  const api = await waitFor(`/api/jobs to list ${id}`, async () => {
    const response = await fetch(`${dashboard.url}/api/jobs?queue=hg-sync&jobId=${encodeURIComponent(id)}`);
    const body = (await response.json()) as Array<{ error: string | null }>;
    return body.some((record) => record.error) ? JSON.stringify(body) : undefined;
  });
  return JSON.stringify({ failedReason: job.failedReason, stacktrace: job.stacktrace, records, api });
}

describe("redirects and server texts", () => {
  it("hg: a redirect to a host outside ALLOWED_HOSTS is refused before any request reaches it", async () => {
    const url = `${frontUrl}/hg-away/l10n/de`;
    await track(url);
    const { id, reason } = await sync(url, "hg");
    expect(hgForbidden.requests).toEqual([]);
    expect(reason).toMatch(/^hg clone failed \(exit \d+\): abort: refused a redirect to a host that is not in ALLOWED_HOSTS$/);
    expect(await visibleTexts(id)).not.toContain(MARKER);
  });

  it("git: a redirect to another host is not followed", async () => {
    const url = `${frontUrl}/git-away/org/repo.git`;
    await track(url);
    const { id, reason } = await sync(url, "git");
    expect(gitForbidden.requests).toEqual([]);
    expect(reason).toMatch(/^git clone failed \(exit 128\): fatal: the server answered 301 \(a redirect\); redirects are not followed/);
    expect(await visibleTexts(id)).not.toContain(MARKER);
  });

  it("git: no system gitconfig applies to clone and fetch (URL rewrite, credential helper)", async () => {
    // The system config would rewrite this URL to the forbidden server.
    const rewritten = `${frontUrl}/git/org/repo.git`;
    const before = gitForbidden.requests.length;
    await track(rewritten);
    const job = await jobs.finished(await jobs.add({ kind: "reconcile", repoUrl: rewritten }), 60_000);
    expect(job.failedReason).toBeUndefined();
    expect(gitForbidden.requests.slice(before)).toEqual([]);
    expect(await readFile(path.join(shims, "helper.log"), "utf8").catch(() => "")).toBe("");
    expect(await env.db.repositoryChangeset.count({ where: { repository: { url: rewritten } } })).toBe(1);
  });

  it("hg: a clone bundle the server names on another host is neither fetched nor needed", async () => {
    // hg.mozilla.org-style clone bundles: the server's manifest points at another host (a CDN).
    const repoDir = path.join(hgAllowed.root, "l10n/bundled");
    await hgAllowed.createRepo("l10n/bundled");
    await hgAllowed.push("l10n/bundled", [{ message: "one", files: { "a.ftl": "a\n" } }]);
    const hgEnv = { PATH: process.env.PATH!, HGRCPATH: "", HGPLAIN: "1", HOME: tmpdir() };
    const bundle = path.join(shims, "stream.hg");
    await promisify(execFile)("hg", ["-R", repoDir, "debugcreatestreamclonebundle", bundle], { env: hgEnv });
    const spec = (await promisify(execFile)("hg", ["debugbundle", "--spec", bundle], { env: hgEnv })).stdout.trim();
    await writeFile(path.join(repoDir, ".hg", "hgrc"), "[extensions]\nclonebundles =\n");
    await writeFile(path.join(repoDir, ".hg", "clonebundles.manifest"), `${hgForbidden.url}/l10n/de/stream.hg BUNDLESPEC=${spec}\n`);
    const before = hgForbidden.requests.length;
    const dest = await mkdtemp(path.join(tmpdir(), "pb-bundled-"));
    try {
      await hgBackend.clone(`${frontUrl}/hg/l10n/bundled`, path.join(dest, "hg"), { log });
      expect(await hgBackend.heads(path.join(dest, "hg"))).toHaveLength(1);
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
    expect(hgForbidden.requests.slice(before)).toEqual([]);
  });

  it("a redirect within the tracked URL's own host: hg follows it, git refuses it", async () => {
    const dest = await mkdtemp(path.join(tmpdir(), "pb-moved-"));
    try {
      await hgBackend.clone(`${frontUrl}/hg-moved/l10n/de`, path.join(dest, "hg"), { log });
      expect(await hgBackend.heads(path.join(dest, "hg"))).toHaveLength(1);
      await expect(gitBackend.clone(`${frontUrl}/git-moved/org/repo.git`, path.join(dest, "git"), { log })).rejects.toThrow(/answered 301 \(a redirect\)/);
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });

  it("what a server says (bodies, reason phrases, ERR packets, remote: lines) never reaches job errors or the API", async () => {
    const cases: Array<[string, "hg" | "git", RegExp]> = [
      [
        `${frontUrl}/hg-body/l10n/de`,
        "hg",
        /^hg clone failed \(exit 255\): abort: 'http:\/\/127\.0\.0\.1:\d+\/hg-body\/l10n\/de' does not appear to be an hg repository:$/,
      ],
      [`${frontUrl}/hg-500/l10n/de`, "hg", /^hg clone failed \(exit \d+\): abort: HTTP Error 500$/],
      [`${frontUrl}/git-err/org/repo.git`, "git", /^git clone failed \(exit 128\): fatal: remote error$/],
      [`${frontUrl}/git-plain/org/repo.git`, "git", /^git clone failed \(exit 128\): fatal: unable to access '.*': The requested URL returned error: 403$/],
    ];
    for (const [url, kind, expected] of cases) {
      await track(url);
      const { id, reason } = await sync(url, kind);
      expect(reason, url).toMatch(expected);
      expect(await visibleTexts(id), url).not.toContain(MARKER);
    }
  });
});
