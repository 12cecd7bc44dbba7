/**
 * A stand-in for GitHub: local git repositories served over HTTP (smart
 * protocol) by `git http-backend` behind a small Node server, so git
 * repositories are cloned through the same http(s)-only URL policy as in
 * production. Repositories are `<url>/<owner>/<name>.git`; commits are made
 * in a work tree and pushed to the served bare repository.
 *
 * Lifecycle: startGitUpstream() → createRepo() / commit()… → close()
 * (removes the repositories).
 */
import { execFile, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface GitCommitOptions {
  /** Default main. */
  branch?: string;
  /** `Name <email>`, author and committer; default `Git Author <author@example.com>`. */
  author?: string;
  /** Author and committer date; default now. */
  date?: Date;
}

export interface GitUpstream {
  url: string;
  repoUrl(name: string): string;
  createRepo(name: string): Promise<string>;
  /** Creates `name` served with a generated history of `count` commits (writeGeneratedHistory); no work tree. Returns its URL and how many of the commits are merges. */
  generateRepo(name: string, count: number): Promise<{ url: string; merges: number }>;
  /** Serves a copy of an existing bare repository (a benchmark's cached history) as `name`; no work tree. */
  adoptRepo(name: string, sourceBare: string): Promise<string>;
  /** Commits `files` (null removes) and pushes; returns the new sha. */
  commit(name: string, files: Record<string, string | null>, message: string, options?: GitCommitOptions): Promise<string>;
  /** Runs git in `name`'s work tree (stdin: `input`, raw bytes allowed); returns stdout. For crafted objects and for reading history. */
  git(name: string, args: string[], input?: Buffer | string): Promise<string>;
  /** Every request seen (`METHOD /path?query`), for assertions. */
  requests: string[];
  close(): Promise<void>;
}

export async function startGitUpstream(): Promise<GitUpstream> {
  const root = await mkdtemp(path.join(tmpdir(), "pb-git-upstream-"));
  const served = path.join(root, "served");
  const work = path.join(root, "work");
  await mkdir(served);
  await mkdir(work);
  // No system or user configuration: the same git everywhere.
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: root,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_AUTHOR_NAME: "Git Author",
    GIT_AUTHOR_EMAIL: "author@example.com",
    GIT_COMMITTER_NAME: "Git Author",
    GIT_COMMITTER_EMAIL: "author@example.com",
  };
  const git = (cwd: string, args: string[], extraEnv: Record<string, string> = {}) => run("git", args, { cwd, env: { ...env, ...extraEnv } });

  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const cgi = spawn("git", ["http-backend"], {
      env: {
        ...env,
        GIT_PROJECT_ROOT: served,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ""),
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_ADDR: "127.0.0.1",
        ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    cgi.on("error", () => res.destroy());
    cgi.stdin.on("error", () => {});
    req.pipe(cgi.stdin);
    // CGI answer: headers, blank line, body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on("end", () => res.end());
  });
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    repoUrl: (name) => `${base}/${name}.git`,
    async createRepo(name) {
      const bare = path.join(served, `${name}.git`);
      await mkdir(path.dirname(bare), { recursive: true });
      await run("git", ["init", "-q", "--bare", "-b", "main", bare], { env });
      const tree = path.join(work, name);
      await mkdir(tree, { recursive: true });
      await git(tree, ["init", "-q", "-b", "main"]);
      await git(tree, ["remote", "add", "origin", bare]);
      return `${base}/${name}.git`;
    },
    async generateRepo(name, count) {
      const bare = path.join(served, `${name}.git`);
      await mkdir(path.dirname(bare), { recursive: true });
      await run("git", ["init", "-q", "--bare", "-b", "main", bare], { env });
      const merges = await writeGeneratedHistory(bare, count);
      return { url: `${base}/${name}.git`, merges };
    },
    async adoptRepo(name, sourceBare) {
      const bare = path.join(served, `${name}.git`);
      await mkdir(path.dirname(bare), { recursive: true });
      await cp(sourceBare, bare, { recursive: true });
      return `${base}/${name}.git`;
    },
    async commit(name, files, message, { branch = "main", author, date } = {}) {
      const tree = path.join(work, name);
      const branches = (await git(tree, ["branch", "--list", branch])).stdout.trim();
      const hasCommits = (await git(tree, ["rev-parse", "--verify", "-q", "HEAD"]).catch(() => ({ stdout: "" }))).stdout.trim() !== "";
      if (hasCommits) await git(tree, ["checkout", "-q", ...(branches ? [branch] : ["-b", branch])]);
      for (const [file, content] of Object.entries(files)) {
        if (content === null) await git(tree, ["rm", "-q", file]);
        else {
          await mkdir(path.dirname(path.join(tree, file)), { recursive: true });
          await writeFile(path.join(tree, file), content);
          await git(tree, ["add", file]);
        }
      }
      await git(tree, ["commit", "-q", "-m", message], identity(author, date));
      await git(tree, ["push", "-q", "origin", branch]);
      return (await git(tree, ["rev-parse", "HEAD"])).stdout.trim();
    },
    git(name, args, input) {
      return new Promise((resolve, reject) => {
        const child = spawn("git", args, { cwd: path.join(work, name), env, stdio: ["pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        let err = "";
        child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
        child.stderr.on("data", (chunk: Buffer) => (err += chunk));
        child.on("error", reject);
        // A command that reads no stdin may exit before it is written.
        child.stdin.on("error", () => {});
        child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out).toString("utf8")) : reject(new Error(`git ${args[0]} exited ${code}: ${err}`))));
        child.stdin.end(input ?? "");
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** The environment that makes `author` (`Name <email>`) author and committer at `date`. */
function identity(author: string | undefined, date: Date | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  const match = author === undefined ? undefined : /^(.*?)\s*<([^>]+)>$/.exec(author);
  if (author !== undefined) {
    const [name, email] = match ? [match[1]!, match[2]!] : [author, "author@example.com"];
    Object.assign(env, { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email });
  }
  if (date) Object.assign(env, { GIT_AUTHOR_DATE: date.toISOString(), GIT_COMMITTER_DATE: date.toISOString() });
  return env;
}

/** A merge every this many commits in generated histories. */
export const GENERATED_MERGE_EVERY = 50;

/**
 * Writes exactly `count` commits into the (empty) bare repository at `bare`
 * with `git fast-import` (~1,000,000 in a few minutes): a linear `main` where
 * every GENERATED_MERGE_EVERY-th commit merges a one-commit `side` branch
 * forked from main's parent. Every other commit changes one file; merges
 * change none. Returns the number of merges.
 */
export async function writeGeneratedHistory(bare: string, count: number): Promise<number> {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
  const importer = spawn("git", ["--git-dir", bare, "fast-import", "--quiet", "--done"], { env, stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  importer.stderr.on("data", (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk;
  });
  importer.stdin.on("error", () => {});
  const done = new Promise<number | null>((resolve) => importer.on("close", resolve));
  const write = (text: string) => (importer.stdin.write(text) ? Promise.resolve() : new Promise<void>((resolve) => importer.stdin.once("drain", resolve)));
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  let made = 0;
  let merges = 0;
  let mainMark = 0;
  let nextMark = 1;
  let chunk = "";
  const commit = (ref: string, from: number | undefined, merge: number | undefined, file: string | undefined) => {
    const mark = nextMark++;
    const n = made++;
    const ident = `Bench Author <bench${n % 7}@example.com> ${1_700_000_000 + n} +0000`;
    chunk +=
      `commit ${ref}\nmark :${mark}\nauthor ${ident}\ncommitter ${ident}\n` +
      data(`change ${n}\n\nBug ${n} - a longer description line`) +
      (from ? `from :${from}\n` : "") +
      (merge ? `merge :${merge}\n` : "") +
      (file ? `M 644 inline ${file}\n${data(`key${n} = value ${n}\n`)}` : "") +
      "\n";
    return mark;
  };
  while (made < count) {
    if (made > 2 && made % GENERATED_MERGE_EVERY === GENERATED_MERGE_EVERY - 2 && made + 2 <= count) {
      // Main's parent is the mark before main's tip: the commits since the last merge are main's.
      const side = commit("refs/heads/side", mainMark - 1, undefined, `side/file${made % 20}.ftl`);
      mainMark = commit("refs/heads/main", mainMark, side, undefined);
      merges++;
    } else {
      mainMark = commit("refs/heads/main", mainMark || undefined, undefined, `dir${made % 4}/file${made % 20}.ftl`);
    }
    if (chunk.length > 1 << 20) {
      await write(chunk);
      chunk = "";
    }
  }
  await write(`${chunk}done\n`);
  importer.stdin.end();
  const code = await done;
  if (code !== 0) throw new Error(`git fast-import exited ${code}: ${stderr.slice(0, 500)}`);
  return merges;
}
