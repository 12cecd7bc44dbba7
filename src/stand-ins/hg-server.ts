/**
 * A stand-in for hg.mozilla.org: real Mercurial repositories served over
 * HTTP by `hg serve` (hgweb, so `hg clone/pull http://...` work for real),
 * behind a small Node proxy that answers `/<repo>/json-pushes` in
 * hg.mozilla.org's format (versions 1 and 2, full=1, startID exclusive and
 * endID inclusive) from the pushes recorded here: the pushlog is a Mozilla
 * extension that a plain `hg serve` does not have.
 *
 * `push(repo, commits)` writes changesets (hg-commit-writer.ts) and records
 * them as one pushlog entry; `commit()` writes history from before the
 * pushlog. For the tests, the proxy records every request, can redirect a
 * repository's pushlog, and `holdBundles(repo)` holds that repository's
 * changegroup downloads until `release()`, to catch a worker mid-pull.
 *
 * Lifecycle: startHgServer() → createRepo() / push()… → close() (removes
 * the repositories).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.ts";
import { type CommitSpec, startHgCommitWriter } from "./hg-commit-writer.ts";

export type { CommitSpec } from "./hg-commit-writer.ts";

const run = promisify(execFile);
const HG_ENV = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HGPLAIN: "1",
  HGRCPATH: "",
  HGENCODING: "utf-8",
  HGUSER: "Test <test@example.com>",
  HOME: tmpdir(),
  // Mercurial's lazy imports race under hgweb's threads ("AttributeError:
  // module 'mercurial.store' has no attribute ..."): load modules eagerly.
  HGDEMANDIMPORT: "disable",
};

interface RecordedPush {
  id: number;
  user: string;
  date: number;
  nodes: string[];
  full: unknown[];
}

export interface HgServer {
  url: string;
  /** The folder the repositories live in. */
  root: string;
  repoUrl(name: string): string;
  createRepo(name: string): Promise<string>;
  /** Commits the changesets and records them as one push (default user pusher@example.com, date 1_700_000_000 + push id); returns their nodes. */
  push(name: string, commits: CommitSpec[], options?: { user?: string; date?: number }): Promise<{ pushId: number; nodes: string[] }>;
  /**
   * Serves a copy of an existing repository (a benchmark's cached history)
   * as `name`, with one pushlog entry per list of `pushes` (nodes, oldest
   * first); full=1 answers list the nodes only.
   */
  adoptRepo(name: string, source: string, pushes: string[][]): Promise<string>;
  /** Commits without recording a push (history from before the pushlog). */
  commit(name: string, commits: CommitSpec[]): Promise<string[]>;
  pushes(name: string): RecordedPush[];
  holdBundles(name: string): void;
  /** Requests currently held for `name`. */
  heldCount(name: string): number;
  release(): void;
  /** Makes `<repo>/json-pushes` answer `status` (a redirect) to `location`; undefined stops it. */
  redirectPushlog(name: string, location: string | undefined, status?: number): void;
  /** Every request path seen (`METHOD /path?query`), for assertions. */
  requests: string[];
  close(): Promise<void>;
}

export async function startHgServer(): Promise<HgServer> {
  const root = await mkdtemp(path.join(tmpdir(), "pb-hg-upstream-"));
  const repos = path.join(root, "repos");
  await mkdir(repos);
  const config = path.join(root, "hgweb.conf");
  // refreshinterval 0: repositories created after start are served at once.
  await writeFile(config, `[paths]\n/ = ${repos}/**\n[web]\nrefreshinterval = 0\nallow_archive =\n`);
  const hgPort = await freePort();
  const hg: ChildProcess = spawn(
    "hg",
    ["serve", "--web-conf", config, "-a", "127.0.0.1", "-p", String(hgPort), "--errorlog", path.join(root, "hg-errors.log")],
    { env: HG_ENV, stdio: "ignore" },
  );
  hg.on("error", () => {});

  const pushlogs = new Map<string, RecordedPush[]>();
  const held = new Map<string, Array<() => void>>();
  const holding = new Set<string>();
  const requests: string[] = [];
  const pushlogRedirects = new Map<string, { location: string; status: number }>();

  const proxy = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const match = /^\/(.+)\/json-pushes\/?$/.exec(url.pathname);
    const redirect = match && pushlogRedirects.get(match[1]!);
    if (redirect) {
      res.writeHead(redirect.status, { location: redirect.location });
      return void res.end();
    }
    if (match) return answerPushlog(match[1]!, url, res);
    const repo = url.pathname.replace(/^\/+|\/+$/g, "");
    const forward = () => {
      const upstream = http.request({ host: "127.0.0.1", port: hgPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    };
    if (holding.has(repo) && url.searchParams.get("cmd") === "getbundle") {
      const queue = held.get(repo) ?? [];
      queue.push(forward);
      held.set(repo, queue);
      return;
    }
    forward();
  });
  proxy.on("error", () => {});

  function answerPushlog(name: string, url: URL, res: http.ServerResponse) {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      // hg.mozilla.org escapes < and > in its JSON.
      res.end(JSON.stringify(body, null, 1).replace(/</g, "\\u003c").replace(/>/g, "\\u003e"));
    };
    const pushes = pushlogs.get(name);
    if (!pushes) return send(404, { error: `repository ${name} not found` });
    const version = url.searchParams.get("version") ?? "1";
    if (version !== "1" && version !== "2") return send(500, { error: "version parameter must be 1 or 2" });
    const lastpushid = pushes.length;
    const startId = url.searchParams.has("startID") ? Number(url.searchParams.get("startID")) : Math.max(0, lastpushid - 10);
    const endId = url.searchParams.has("endID") ? Number(url.searchParams.get("endID")) : lastpushid;
    const full = url.searchParams.has("full");
    const selected: Record<string, unknown> = {};
    for (const push of pushes) {
      if (push.id > startId && push.id <= endId) {
        selected[String(push.id)] = {
          changesets: full ? push.full : push.nodes,
          date: push.date,
          user: push.user,
          ...(push.nodes.length ? { git_changesets: push.nodes.map(() => null) } : {}),
        };
      }
    }
    send(200, version === "2" ? { lastpushid, pushes: selected } : selected);
  }

  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  await waitForHg(hgPort);
  const writer = startHgCommitWriter(HG_ENV);

  function release() {
    holding.clear();
    for (const queue of held.values()) for (const forward of queue.splice(0)) forward();
  }

  return {
    url: base,
    root: repos,
    requests,
    repoUrl: (name) => `${base}/${name}`,
    async createRepo(name) {
      await mkdir(path.dirname(path.join(repos, name)), { recursive: true });
      await run("hg", ["init", path.join(repos, name)], { env: HG_ENV });
      pushlogs.set(name, []);
      return `${base}/${name}`;
    },
    async adoptRepo(name, source, pushes) {
      const dest = path.join(repos, name);
      await mkdir(path.dirname(dest), { recursive: true });
      await cp(source, dest, { recursive: true });
      const list: RecordedPush[] = pushes.map((nodes, index) => ({
        id: index + 1,
        user: "pusher@example.com",
        date: 1_700_000_000 + index + 1,
        nodes,
        full: nodes,
      }));
      pushlogs.set(name, list);
      return `${base}/${name}`;
    },
    commit: async (name, commits) => (await writer.write(path.join(repos, name), commits, false)).nodes,
    async push(name, commits, options = {}) {
      const { nodes, full } = await writer.write(path.join(repos, name), commits, true);
      const list = pushlogs.get(name) ?? [];
      pushlogs.set(name, list);
      const pushId = list.length + 1;
      list.push({ id: pushId, user: options.user ?? "pusher@example.com", date: options.date ?? 1_700_000_000 + pushId, nodes, full });
      return { pushId, nodes };
    },
    pushes: (name) => pushlogs.get(name) ?? [],
    holdBundles: (name) => void holding.add(name),
    redirectPushlog: (name, location, status = 301) =>
      void (location === undefined ? pushlogRedirects.delete(name) : pushlogRedirects.set(name, { location, status })),
    heldCount: (name) => held.get(name)?.length ?? 0,
    release,
    async close() {
      release();
      writer.close();
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      // Waited for, so removing the folder does not race its error log.
      if (hg.pid !== undefined && hg.exitCode === null && hg.signalCode === null) {
        const exited = new Promise((resolve) => hg.once("exit", resolve));
        hg.kill("SIGTERM");
        await exited;
      }
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** `hg serve` takes a moment to bind its port. */
async function waitForHg(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/" }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("hg serve did not start");
}
