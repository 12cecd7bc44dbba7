/**
 * Writes changesets into the hg stand-in's repositories through one
 * long-lived hg-commits.py process (see there for why not `hg commit`).
 *
 * The script answers its requests in order, one line each, so requests are
 * queued here and each waits for the previous answer. A failed request
 * rejects its own promise only; the queue goes on.
 *
 * Lifecycle: startHgCommitWriter(env) → write()… → close().
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// Beside this file in src/ and, copied by `npm run build`, in dist/.
const COMMITS_SCRIPT = fileURLToPath(new URL("./hg-commits.py", import.meta.url));

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

export interface WrittenCommits {
  nodes: string[];
  /** The pushlog's full=1 changeset entries, when asked for. */
  full: unknown[];
}

export interface HgCommitWriter {
  /** Commits into the repository at `repo` (a folder); `describe` also returns the pushlog entries. */
  write(repo: string, commits: CommitSpec[], describe: boolean): Promise<WrittenCommits>;
  /** Commits `count` generated linear changesets on the tip, fast (benchmarks); `start` numbers them, `files` bounds the files touched. */
  generate(repo: string, count: number, options?: { start?: number; files?: number }): Promise<string[]>;
  close(): void;
}

/** The Python that runs `hg` (its shebang), which can import mercurial. */
export function hgPython(): string {
  const hgPath = (process.env.PATH ?? "")
    .split(":")
    .map((dir) => path.join(dir, "hg"))
    .find((file) => {
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

export function startHgCommitWriter(env: Record<string, string>): HgCommitWriter {
  const helper = spawn(hgPython(), [COMMITS_SCRIPT], { env, stdio: ["pipe", "pipe", "inherit"] });
  helper.on("error", () => {});
  helper.stdin.on("error", () => {});
  const answers: Array<(line: string) => void> = [];
  let buffered = "";
  helper.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      answers.shift()?.(line);
    }
  });
  let queue: Promise<unknown> = Promise.resolve();
  const request = (spec: object): Promise<WrittenCommits> => {
    const result = queue.then(
      () =>
        new Promise<WrittenCommits>((resolve, reject) => {
          answers.push((line) => {
            const answer = JSON.parse(line) as { nodes?: string[]; full?: unknown[]; error?: string };
            if (answer.error) reject(new Error(`hg-commits.py: ${answer.error}`));
            else resolve({ nodes: answer.nodes!, full: answer.full! });
          });
          helper.stdin.write(`${JSON.stringify(spec)}\n`);
        }),
    );
    queue = result.catch(() => {});
    return result;
  };

  return {
    async generate(repo, count, { start = 0, files = 20 } = {}) {
      return (await request({ repo, generate: { count, start, files } })).nodes;
    },
    write(repo, commits, describe) {
      const spec = {
        repo,
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
      return request(spec);
    },
    close: () => void helper.stdin.end(),
  };
}
