/**
 * A local stand-in for hg.mozilla.org, for the demo: real Mercurial
 * repositories served by `hg serve` (hgweb, for clone and pull), behind a
 * small proxy that also answers `json-pushes?version=2&full=1&startID&endID`
 * in hg.mozilla.org's format from the pushes recorded here (the pushlog is a
 * Mozilla extension that a plain `hg serve` does not have).
 *
 * Lifecycle: start() → createRepository() / push() → close().
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { runCommand } from "./run-command.ts";

export interface DemoCommit {
  author: string;
  message: string;
  /** Path → content. */
  files: Record<string, string>;
}

interface RecordedChangeset {
  node: string;
  author: string;
  branch: string;
  desc: string;
  files: string[];
  parents: string[];
}

interface RecordedPush {
  pushid: number;
  user: string;
  date: number;
  changesets: RecordedChangeset[];
}

export interface PushAnnouncement {
  repoUrl: string;
  /** The repository path, also the hgpushes routing key. */
  path: string;
  heads: string[];
  push: { pushid: number; user: string; time: number };
}

// hg.mozilla.org lists the null node as the parent of a root changeset.
const NULL_NODE = "0".repeat(40);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class HgUpstream {
  private readonly pushes = new Map<string, RecordedPush[]>();
  private hgServe: ChildProcess | undefined;
  private proxy: Server | undefined;
  private hgPort = 0;
  url = "";

  constructor(private readonly root: string) {}

  async start(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const conf = path.join(this.root, "hgweb.conf");
    await writeFile(conf, `[paths]\n/ = ${this.root}/**\n[web]\nallow-pull = true\nrefreshinterval = 0\n`);
    this.hgPort = await freePort();
    const hgServe = spawn("hg", ["serve", "--web-conf", conf, "--address", "127.0.0.1", "--port", String(this.hgPort), "--errorlog", path.join(this.root, "hg-errors.log")], {
      // Mercurial's lazy imports race under hgweb's threads (AttributeError: module
      // 'mercurial.store' has no attribute ...): load modules eagerly.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", HGPLAIN: "1", HGDEMANDIMPORT: "disable" },
      stdio: "ignore",
    });
    hgServe.on("error", () => {});
    this.hgServe = hgServe;
    this.proxy = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://upstream");
      if (url.pathname.endsWith("/json-pushes")) return this.answerPushlog(url, response);
      const forward = httpRequest({ host: "127.0.0.1", port: this.hgPort, method: request.method, path: request.url, headers: request.headers }, (upstream) => {
        response.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(response);
      });
      forward.on("error", () => {
        if (!response.headersSent) response.writeHead(502);
        response.end();
      });
      request.pipe(forward);
    });
    await new Promise<void>((resolve) => this.proxy!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.proxy.address() as AddressInfo).port}`;
    // hg serve takes a moment to bind.
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(`http://127.0.0.1:${this.hgPort}/`);
        if (response.ok) break;
      } catch {
        if (attempt > 100) throw new Error("hg serve did not start");
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  repoUrl(repoPath: string): string {
    return `${this.url}/${repoPath}`;
  }

  async createRepository(repoPath: string): Promise<string> {
    const dir = path.join(this.root, repoPath);
    await mkdir(dir, { recursive: true });
    await runCommand("hg", ["init"], dir);
    this.pushes.set(repoPath, []);
    return this.repoUrl(repoPath);
  }

  /** Commits `commits` and records them as one push, as hg.mozilla.org's pushlog would. */
  async push(repoPath: string, user: string, commits: DemoCommit[], date = Math.floor(Date.now() / 1000)): Promise<PushAnnouncement> {
    const dir = path.join(this.root, repoPath);
    const recorded: RecordedChangeset[] = [];
    for (const commit of commits) {
      for (const [file, content] of Object.entries(commit.files)) {
        await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
        await writeFile(path.join(dir, file), content);
      }
      await runCommand("hg", ["commit", "--addremove", "--user", commit.author, "--date", `${date} 0`, "--message", commit.message], dir);
      const line = await runCommand("hg", ["log", "--rev", ".", "--template", "{node}\\t{p1node}\\t{p2node}\\t{branch}\\t{join(files, '\\x01')}"], dir);
      const [node, p1, p2, branch, files] = line.split("\t");
      recorded.push({ node: node!, author: commit.author, branch: branch!, desc: commit.message, files: files ? files.split("\x01") : [], parents: p2 === NULL_NODE ? [p1!] : [p1!, p2!] });
    }
    const list = this.pushes.get(repoPath)!;
    const push: RecordedPush = { pushid: list.length + 1, user, date, changesets: recorded };
    list.push(push);
    return { repoUrl: this.repoUrl(repoPath), path: repoPath, heads: [recorded.at(-1)!.node], push: { pushid: push.pushid, user, time: date } };
  }

  private answerPushlog(url: URL, response: import("node:http").ServerResponse): void {
    const repoPath = url.pathname.replace(/^\/|\/json-pushes$/g, "");
    const list = this.pushes.get(repoPath);
    if (!list) {
      response.writeHead(404, { "content-type": "application/json" });
      return void response.end(JSON.stringify({ error: `unknown repository ${repoPath}` }));
    }
    const startId = Number(url.searchParams.get("startID") ?? 0);
    const endId = Number(url.searchParams.get("endID") ?? list.length);
    const full = url.searchParams.get("full") === "1";
    const pushes: Record<string, unknown> = {};
    // startID is exclusive, endID inclusive (hg.mozilla.org's pushlog).
    for (const push of list.filter((p) => p.pushid > startId && p.pushid <= endId)) {
      pushes[String(push.pushid)] = {
        changesets: full
          ? push.changesets.map((c, index) => ({ ...c, git_node: null, git_parents: [null], tags: index === push.changesets.length - 1 && push === list.at(-1) ? ["tip"] : [] }))
          : push.changesets.map((c) => c.node),
        date: push.date,
        user: push.user,
      };
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ lastpushid: list.length, pushes }, null, 4));
  }

  async close(): Promise<void> {
    if (this.proxy) {
      this.proxy.closeAllConnections();
      await new Promise((resolve) => this.proxy!.close(resolve));
    }
    const hgServe = this.hgServe;
    if (hgServe && hgServe.exitCode === null) {
      const exited = new Promise((resolve) => hgServe.once("exit", resolve));
      hgServe.kill("SIGTERM");
      await exited;
    }
  }
}
