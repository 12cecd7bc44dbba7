/**
 * A real `node dist/cli.js bridge` process (built by `npm run build`, as CI
 * does before testing), with its output kept for assertions and for the
 * message of a failing test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const CLI_PATH = `${root}dist/cli.js`;

export interface BridgeProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  logs(): string;
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
}

/** Fails with a clear message when the CLI has not been built. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first (CI does)`);
}

export function spawnBridgeProcess(env: Record<string, string>): BridgeProcess {
  const child = spawn(process.execPath, [CLI_PATH, "bridge"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, logs: () => output, exited };
}
