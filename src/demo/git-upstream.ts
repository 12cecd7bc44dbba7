/**
 * A local stand-in for a GitHub repository, for the demo: a bare git
 * repository served over git's "dumb" HTTP protocol (static files after
 * `git update-server-info`), which `git clone`/`fetch` speak without a CGI.
 *
 * Lifecycle: start() → createRepository() / push() → close().
 */
import { createReadStream } from "node:fs";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { DemoCommit } from "./hg-upstream.ts";
import { runCommand } from "./run-command.ts";

export interface GitPushResult {
  repoUrl: string;
  fullName: string;
  before: string;
  after: string;
  commits: Array<{ id: string; message: string; timestamp: string; author: { name: string; email: string }; added: string[]; modified: string[]; removed: string[] }>;
}

export class GitUpstream {
  private server: Server | undefined;
  url = "";

  constructor(private readonly root: string) {}

  async start(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const served = path.join(this.root, "served");
    this.server = createServer(async (request, response) => {
      const pathname = decodeURIComponent(new URL(request.url ?? "/", "http://upstream").pathname);
      const file = path.resolve(served, `.${pathname}`);
      if (!file.startsWith(served + path.sep) || request.method !== "GET") {
        response.writeHead(404);
        return void response.end();
      }
      try {
        if (!(await stat(file)).isFile()) throw new Error("not a file");
        response.writeHead(200, { "content-type": "application/octet-stream" });
        createReadStream(file).on("error", () => response.destroy()).pipe(response);
      } catch {
        response.writeHead(404);
        response.end();
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private bare(fullName: string): string {
    return path.join(this.root, "served", fullName);
  }

  private work(fullName: string): string {
    return path.join(this.root, "work", fullName);
  }

  async createRepository(fullName: string): Promise<string> {
    await mkdir(this.bare(fullName), { recursive: true });
    await runCommand("git", ["init", "--quiet", "--bare", "--initial-branch=main"], this.bare(fullName));
    await mkdir(this.work(fullName), { recursive: true });
    await runCommand("git", ["init", "--quiet", "--initial-branch=main"], this.work(fullName));
    return `${this.url}/${fullName}`;
  }

  async push(fullName: string, commits: DemoCommit[], date = new Date()): Promise<GitPushResult> {
    const work = this.work(fullName);
    const before = await runCommand("git", ["rev-parse", "--verify", "--quiet", "HEAD"], work).then((s) => s.trim(), () => "0".repeat(40));
    const pushed: GitPushResult["commits"] = [];
    for (const commit of commits) {
      for (const [file, content] of Object.entries(commit.files)) {
        await mkdir(path.dirname(path.join(work, file)), { recursive: true });
        await writeFile(path.join(work, file), content);
      }
      const [, name = commit.author, email = "demo@example.org"] = /^(.*?)\s*<([^>]+)>$/.exec(commit.author) ?? [];
      const env = { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email, GIT_AUTHOR_DATE: date.toISOString(), GIT_COMMITTER_DATE: date.toISOString() };
      await runCommand("git", ["add", "--all"], work, env);
      const status = await runCommand("git", ["diff", "--cached", "--name-status"], work, env);
      await runCommand("git", ["commit", "--quiet", "--message", commit.message], work, env);
      const id = (await runCommand("git", ["rev-parse", "HEAD"], work)).trim();
      const changes = status.trim().split("\n").filter(Boolean).map((line) => line.split("\t") as [string, string]);
      pushed.push({
        id,
        message: commit.message,
        timestamp: date.toISOString(),
        author: { name, email },
        added: changes.filter(([s]) => s === "A").map(([, f]) => f),
        modified: changes.filter(([s]) => s === "M").map(([, f]) => f),
        removed: changes.filter(([s]) => s === "D").map(([, f]) => f),
      });
    }
    await runCommand("git", ["push", "--quiet", this.bare(fullName), "main"], work);
    await runCommand("git", ["update-server-info"], this.bare(fullName));
    return { repoUrl: `${this.url}/${fullName}`, fullName, before, after: pushed.at(-1)!.id, commits: pushed };
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
  }
}
