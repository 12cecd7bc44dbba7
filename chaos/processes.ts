/**
 * The real pulse-bridge processes of a chaos run (`node dist/cli.js <role>`),
 * each with its own log file. A process that exits without the harness
 * having killed or stopped it is a crash, and is counted.
 *
 * Lifecycle of a RoleProcess: running → (sigkill → restart)* → stopped by
 * stopAll() (SIGTERM, then SIGKILL after the grace period).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLI = path.join(ROOT, "dist", "cli.js");

export interface RoleProcess {
  /** e.g. "bridge#1", "worker tc-ingest#2". */
  label: string;
  args: string[];
  child: ChildProcess;
  /** Exits the harness did not cause. */
  crashes: Array<{ code: number | null; signal: string | null; at: Date }>;
  /** Exit codes of SIGTERM stops (must be 0). */
  stopCodes: Array<number | null>;
  log: WriteStream;
}

export class ProcessGroup {
  readonly processes: RoleProcess[] = [];
  private stopping = false;

  constructor(
    private readonly env: Record<string, string>,
    private readonly logDir: string,
  ) {}

  start(label: string, args: string[]): RoleProcess {
    const log = createWriteStream(path.join(this.logDir, `${label.replace(/[^a-z0-9#-]+/gi, "-")}.log`), { flags: "a" });
    log.on("error", () => {});
    const proc: RoleProcess = { label, args, child: undefined as unknown as ChildProcess, crashes: [], stopCodes: [], log };
    this.spawn(proc);
    this.processes.push(proc);
    return proc;
  }

  private spawn(proc: RoleProcess): void {
    const child = spawn(process.execPath, [CLI, ...proc.args], { cwd: ROOT, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    child.on("error", (error) => proc.log.write(`spawn error: ${error.message}\n`));
    child.stdout!.pipe(proc.log, { end: false });
    child.stderr!.pipe(proc.log, { end: false });
    const expected = { killed: false };
    (child as ChildProcess & { expectedExit?: typeof expected }).expectedExit = expected;
    child.once("exit", (code, signal) => {
      proc.log.write(`\n== exit code=${code} signal=${signal}\n`);
      if (!expected.killed && !this.stopping) proc.crashes.push({ code, signal, at: new Date() });
    });
    proc.child = child;
  }

  /** SIGKILL (as the OOM killer or a lost machine would), then start it again after `downMs`. */
  async sigkillAndRestart(proc: RoleProcess, downMs: number): Promise<void> {
    const child = proc.child as ChildProcess & { expectedExit?: { killed: boolean } };
    child.expectedExit!.killed = true;
    const exited = new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once("exit", resolve)));
    child.kill("SIGKILL");
    await exited;
    await new Promise((resolve) => setTimeout(resolve, downMs));
    if (!this.stopping) this.spawn(proc);
  }

  /** SIGTERM every process, SIGKILL what is left after `graceMs`; records exit codes. */
  async stopAll(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.processes.map(async (proc) => {
        const child = proc.child;
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        proc.stopCodes.push(await exited);
        clearTimeout(timer);
      }),
    );
    for (const proc of this.processes) proc.log.end();
  }

  crashes(): Array<{ label: string; code: number | null; signal: string | null }> {
    return this.processes.flatMap((proc) => proc.crashes.map((crash) => ({ label: proc.label, code: crash.code, signal: crash.signal })));
  }
}
