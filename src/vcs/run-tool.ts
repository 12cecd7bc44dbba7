/**
 * Runs hg or git as a child process: argument list (never a shell), a
 * minimal environment (nothing from the worker's own environment leaks in:
 * no credentials, no user config, no EDITOR/pager), bounded output, and
 * progress lines handed to a callback.
 */
import { spawn } from "node:child_process";
import { inSpan, tracingOn } from "../core/tracing.ts";

/** PATH is the only thing inherited, so the tools can be found. */
export function minimalEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8", ...extra };
}

/** Characters kept of the tool's message in a ToolError. */
const DETAIL_MAX = 200;

/**
 * Text a server controls that hg and git print inside an otherwise useful
 * line: cut from the line, keeping what the tool itself says.
 */
const SERVER_TAILS: RegExp[] = [
  // hg: "HTTP Error 404: <reason phrase from the status line>"
  /(HTTP Error \d+):.*/i,
  // hg: "unexpected response: '<bytes>'"; git: "remote error: <ERR packet>", "protocol error: <bytes>"
  /(unexpected response|remote error|protocol error|bad response):.*/i,
  // hg: "'<url>' sent a broken Content-Type header (<header>)"
  /(sent a broken Content-Type header).*/i,
  // hg: "abort: error: <reason>" for an HTTP exception quotes the server's status line
  /(BadStatusLine|LineTooLong|IncompleteRead|RemoteDisconnected)\b.*/,
];

/**
 * What of a failed tool's stderr may be shown (job errors, /api/jobs, Bull
 * Board): its first meaningful line, cleaned. A server's own words never
 * pass: hg quotes a non-repository answer's body between `---%<---` lines
 * and prints a server's messages after `remote:` (git too); both come after
 * or instead of the tool's own first line, and are dropped whole. Also
 * dropped: credentials in URLs and control characters; the rest is cut at
 * DETAIL_MAX characters.
 */
export function toolErrorDetail(stderr: string): string {
  const lines: string[] = [];
  let quoted = false;
  for (const raw of stderr.split(/\r\n|[\r\n]/)) {
    const line = raw.trim();
    if (line.startsWith("---%<---")) {
      quoted = !quoted;
      continue;
    }
    if (quoted || line === "" || /^remote:/i.test(line)) continue;
    // hg's progress and notices ("real URL is ...", "(hint)") say nothing about the failure.
    if (
      /^(real URL is |\(|searching for changes|requesting all changes|streaming all changes|adding |transferred |applying clone bundle|Cloning into)/i.test(
        line,
      )
    )
      continue;
    lines.push(line);
    if (/^(abort|fatal|error):/i.test(line)) return clean(line);
  }
  return clean(lines[0] ?? "");
}

function clean(line: string): string {
  let text = line.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@'"]*@/gi, "$1***@");
  for (const tail of SERVER_TAILS) text = text.replace(tail, "$1");
  text = text.replace(/\s+/g, " ").trim();
  return text.length > DETAIL_MAX ? `${text.slice(0, DETAIL_MAX - 1)}…` : text;
}

/**
 * A failed hg/git run. Its message names the subcommand and exit code and
 * carries only toolErrorDetail() of stderr: the message becomes the job's
 * error, which operators (and whoever can read the dashboard) see, so it must
 * hold nothing a server sent. The raw stderr is not kept.
 */
export class ToolError extends Error {
  override name = "ToolError";
  readonly detail: string;
  constructor(
    readonly command: string,
    readonly code: number | null,
    stderr: string,
  ) {
    const detail = toolErrorDetail(stderr);
    super(`${command} failed (${code === null ? "killed" : `exit ${code}`})${detail ? `: ${detail}` : ""}`);
    this.detail = detail;
  }
}

/** Global options of hg and git that take a value: their value is not the subcommand. */
const OPTIONS_WITH_VALUE = new Set(["--config", "-c", "-R", "--repository", "--cwd", "-C", "--encoding"]);

/** The subcommand of an hg/git argument list (`pull` in `--config x=y pull -R r`), for error messages. */
export function subcommandOf(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (OPTIONS_WITH_VALUE.has(arg)) i++;
    else if (!arg.startsWith("-")) return arg;
  }
  return "";
}

export interface RunOptions {
  env: Record<string, string>;
  cwd?: string;
  signal?: AbortSignal;
  /** Stop reading (and kill the tool) beyond this many stdout bytes. */
  maxBytes?: number;
  /** Called with each stdout chunk instead of buffering it. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with each stderr line (progress messages). */
  onStderrLine?: (line: string) => void;
  /** Feed this to stdin. */
  input?: string;
}

export interface RunResult {
  stdout: Buffer;
  truncated: boolean;
}

/** Runs the tool; with traces on, inside a span named after its subcommand (`hg pull`, `git fetch`). */
export function runTool(executable: string, args: string[], options: RunOptions): Promise<RunResult> {
  if (!tracingOn()) return spawnTool(executable, args, options);
  const command = `${executable} ${subcommandOf(args)}`.trim();
  return inSpan(command, { "process.executable.name": executable, "process.command": command }, () => spawnTool(executable, args, options), "client");
}

function spawnTool(executable: string, args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      signal: options.signal,
    });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let truncated = false;
    let stderr = "";
    let pendingLine = "";
    child.on("error", (error) => reject(error));
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
    child.stdout.on("data", (chunk: Buffer) => {
      if (truncated) return;
      if (options.onStdout) return options.onStdout(chunk);
      if (options.maxBytes !== undefined && bytes + chunk.length > options.maxBytes) {
        chunks.push(chunk.subarray(0, options.maxBytes - bytes));
        bytes = options.maxBytes;
        truncated = true;
        child.kill("SIGTERM");
        return;
      }
      chunks.push(chunk);
      bytes += chunk.length;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      if (stderr.length < 64_000) stderr += text;
      if (options.onStderrLine) {
        const lines = (pendingLine + text).split(/[\r\n]+/);
        pendingLine = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) options.onStderrLine(line.trim());
      }
    });
    child.on("close", (code) => {
      if (truncated) return resolve({ stdout: Buffer.concat(chunks), truncated });
      if (code !== 0) return reject(new ToolError(`${executable} ${subcommandOf(args)}`.trim(), code, stderr));
      resolve({ stdout: Buffer.concat(chunks), truncated });
    });
  });
}

/**
 * Logs a long transfer's progress: every tool line at debug level, and at
 * most one info line per `everyMs` with the elapsed time and latest line.
 */
export function progressLogger(log: { info: (obj: object, msg: string) => void; debug: (obj: object, msg: string) => void }, what: string, everyMs = 10_000) {
  const started = Date.now();
  let lastInfo = started;
  return (line: string) => {
    log.debug({ progress: line }, what);
    const now = Date.now();
    if (now - lastInfo >= everyMs) {
      lastInfo = now;
      log.info({ elapsedMs: now - started, progress: line.slice(0, 200) }, `${what} in progress`);
    }
  };
}

/**
 * Runs the tool and yields its stdout lines (without the newline) in arrays
 * of at most `batchSize`, as the tool writes them: a listing of a whole
 * history (a million revisions is ~41 MB of text) is never held at once. The
 * tool waits on a full pipe while the caller works on a batch (backpressure).
 * Throws a ToolError after the last batch if the tool failed; a caller that
 * stops early (break, throw) kills it.
 */
export async function* streamToolLines(executable: string, args: string[], options: RunOptions & { batchSize: number }): AsyncGenerator<string[]> {
  const child = spawn(executable, args, { env: options.env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"], signal: options.signal });
  let stderr = "";
  let spawnError: Error | undefined;
  child.on("error", (error) => {
    spawnError = error;
  });
  child.stdin.on("error", () => {});
  child.stdin.end(options.input ?? "");
  child.stderr.on("data", (chunk: Buffer) => {
    if (stderr.length < 64_000) stderr += chunk.toString("utf8");
  });
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let finished = false;
  try {
    let partial = "";
    let lines: string[] = [];
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      const parts = (partial + chunk.toString("latin1")).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        if (line === "") continue;
        lines.push(line);
        if (lines.length >= options.batchSize) {
          yield lines;
          lines = [];
        }
      }
    }
    if (partial !== "") lines.push(partial);
    const code = await closed;
    if (spawnError) throw spawnError;
    if (code !== 0) throw new ToolError(`${executable} ${subcommandOf(args)}`.trim(), code, stderr);
    if (lines.length) yield lines;
    finished = true;
  } finally {
    if (!finished && child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
}
