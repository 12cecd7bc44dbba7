/**
 * A stand-in for hg.mozilla.org: real Mercurial repositories served over
 * HTTP by `hg serve` (hgweb, so `hg clone/pull http://...` work for real),
 * behind a small Node proxy that answers `/<repo>/json-pushes` in
 * hg.mozilla.org's version 2 format from the pushes this server records.
 *
 * Tests write changesets with `push(repo, commits)` (test/support/hg-commits.py:
 * one Python process per push, fast) and each call is one pushlog entry.
 * `holdBundles(repo)` makes the proxy hold that repository's changegroup
 * downloads until `release()`: a test can catch a worker in the middle of a pull.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const HG_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HGPLAIN: "1", HGRCPATH: "", HGENCODING: "utf-8", HGUSER: "Test <test@example.com>", HOME: tmpdir() };
const COMMITS_SCRIPT = fileURLToPath(new URL("./hg-commits.py", import.meta.url));

/** The Python that runs `hg` (its shebang), which can import mercurial. */
export function hgPython(): string {
  const hgPath = process.env.PATH!.split(":").map((dir) => path.join(dir, "hg")).find((file) => {
    try {
      readFileSync(file);
      return true;
    } catch {
      return false;
    }
  });
  const shebang = hgPath ? readFileSync(hgPath, "utf8").split("\n")[0]! : "#!/usr/bin/python3";
  return shebang.replace(/^#!\s*/, "").split(/\s+/)[0]!;
}

export interface CommitSpec {
  /** Parent nodes; default: the repository's tip. Two for a merge. */
  parents?: string[];
  branch?: string;
  user?: string;
  /** `"<unix seconds> <tz offset>"` */
  date?: string;
  message?: string;
  /** Raw bytes of the description, base64 (for non-UTF-8 content). */
  messageBase64?: string;
  /** path → content, or null to remove the file. */
  files?: Record<string, string | null>;
  /** dest → source: a copy/rename (remove the source in `files` for a rename). */
  copies?: Record<string, string>;
}

interface RecordedPush {
  id: number;
  user: string;
  date: number;
  nodes: string[];
  full: unknown[];
}

export interface HgServer {
  url: string;
  root: string;
  repoUrl(name: string): string;
  createRepo(name: string): Promise<string>;
  /** Commits the changesets and records them as one push; returns their nodes. */
  push(name: string, commits: CommitSpec[], options?: { user?: string; date?: number }): Promise<{ pushId: number; nodes: string[] }>;
  /** Commits without recording a push (history from before the pushlog). */
  commit(name: string, commits: CommitSpec[]): Promise<string[]>;
  pushes(name: string): RecordedPush[];
  holdBundles(name: string): void;
  /** Requests currently held for `name`. */
  heldCount(name: string): number;
  release(): void;
  /** Makes `<repo>/json-pushes` answer `status` (a redirect) to `location`; undefined stops it. */
  redirectPushlog(name: string, location: string | undefined, status?: number): void;
  /** Every request path seen (for assertions). */
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
  const hg: ChildProcess = spawn("hg", ["serve", "--web-conf", config, "-a", "127.0.0.1", "-p", String(hgPort)], { env: HG_ENV, stdio: "ignore" });
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
  const port = (proxy.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  await waitForHg(hgPort);

  // One long-lived helper writes every commit (see hg-commits.py --serve).
  const helper = spawn(hgPython(), [COMMITS_SCRIPT, "--serve"], { env: HG_ENV, stdio: ["pipe", "pipe", "inherit"] });
  helper.on("error", () => {});
  helper.stdin.on("error", () => {});
  const answers: Array<(line: string) => void> = [];
  let buffered = "";
  helper.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      answers.shift()?.(line);
    }
  });
  // Requests are answered in order; serialize them so each waits its turn.
  let queue: Promise<unknown> = Promise.resolve();
  function write(name: string, commits: CommitSpec[], describe: boolean): Promise<{ nodes: string[]; full: unknown[] }> {
    const spec = {
      repo: path.join(repos, name),
      describe,
      commits: commits.map((c) => ({
        parents: c.parents,
        branch: c.branch,
        user: c.user,
        date: c.date,
        message: c.message,
        ...(c.messageBase64 ? { message_b64: c.messageBase64 } : {}),
        files: c.files ?? { [`file-${Math.random().toString(36).slice(2)}.txt`]: "content\n" },
        copies: c.copies,
      })),
    };
    const result = queue.then(
      () =>
        new Promise<{ nodes: string[]; full: unknown[] }>((resolve, reject) => {
          answers.push((line) => {
            const answer = JSON.parse(line) as { nodes?: string[]; full?: unknown[]; error?: string };
            if (answer.error) reject(new Error(`hg-commits.py: ${answer.error}`));
            else resolve({ nodes: answer.nodes!, full: answer.full! });
          });
          helper.stdin.write(JSON.stringify(spec) + "\n");
        }),
    );
    queue = result.catch(() => {});
    return result;
  }
  const commit = async (name: string, commits: CommitSpec[]) => (await write(name, commits, false)).nodes;

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
    commit,
    async push(name, commits, options = {}) {
      const { nodes, full } = await write(name, commits, true);
      const list = pushlogs.get(name) ?? [];
      pushlogs.set(name, list);
      const pushId = list.length + 1;
      list.push({ id: pushId, user: options.user ?? "pusher@example.com", date: options.date ?? 1_700_000_000 + pushId, nodes, full });
      return { pushId, nodes };
    },
    pushes: (name) => pushlogs.get(name) ?? [],
    holdBundles: (name) => void holding.add(name),
    redirectPushlog: (name, location, status = 301) => void (location === undefined ? pushlogRedirects.delete(name) : pushlogRedirects.set(name, { location, status })),
    heldCount: (name) => held.get(name)?.length ?? 0,
    release,
    async close() {
      release();
      helper.stdin.end();
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      hg.kill("SIGTERM");
      await rm(root, { recursive: true, force: true });
    },
  };
}

export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

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
