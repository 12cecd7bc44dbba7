/** Runs hg or git for the demo's upstreams, with a minimal environment and no shell. */
import { execFile } from "node:child_process";

const BASE_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", HGPLAIN: "1", LANG: "C.UTF-8" };

export function runCommand(executable: "hg" | "git", args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(executable, args, { cwd, env: { ...BASE_ENV, ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${executable} ${args[0]} failed: ${(stderr || error.message).trim().split("\n")[0]}`));
      else resolve(stdout);
    });
  });
}
