/**
 * `pulse-bridge webhook` as a process: refuses to start without its secret,
 * answers a signed ping on its own port, stops cleanly on SIGTERM.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliver } from "../support/github-webhook-sender.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SECRET = "cli-test-secret-0123456789abcdef";
let env: TestEnvironment;

function run(extraEnv: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "webhook"], {
    cwd: root,
    env: { ...process.env, ...env.env, LOG_LEVEL: "info", WEBHOOK_PORT: "0", ...extraEnv },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

beforeAll(async () => {
  env = await createTestEnvironment("webhook-cli");
});
afterAll(async () => {
  await env?.cleanup();
});

describe("pulse-bridge webhook", () => {
  it("will not start without GITHUB_WEBHOOK_SECRET, nor with a short one", async () => {
    const unset = run({});
    expect(await unset.exited).toBe(1);
    expect(unset.stderr()).toMatch(/pulse-bridge: GITHUB_WEBHOOK_SECRET is not set/);
    const short = run({ GITHUB_WEBHOOK_SECRET: "short" });
    expect(await short.exited).toBe(1);
    expect(short.stderr()).toMatch(/GITHUB_WEBHOOK_SECRET: must be at least 16 characters \(use a random secret\) \(got a value that is not valid\)/);
    expect(short.stderr()).not.toContain('short"');
  }, 30_000);

  it("answers a signed ping on its own port and stops cleanly on SIGTERM", async () => {
    const role = run({ GITHUB_WEBHOOK_SECRET: SECRET });
    const url = await waitFor("the receiver to listen", () => /"url":"(http:[^"]+)\/github"/.exec(role.stderr())?.[1], { timeoutMs: 30_000 });
    expect(await deliver(`${url}/github`, { zen: "Design for failure." }, { event: "ping", secret: SECRET })).toMatchObject({
      status: 200,
      body: { outcome: "ping" },
    });
    expect((await deliver(`${url}/github`, { zen: "x" }, { event: "ping", secret: "another-secret-of-16-chars" })).status).toBe(401);
    role.child.kill("SIGTERM");
    expect(await role.exited).toBe(0);
    expect(role.stderr()).not.toContain(SECRET);
  }, 40_000);
});
