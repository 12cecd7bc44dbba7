/**
 * `pulse-bridge demo` end to end, as a newcomer runs it: exits 0 and prints
 * non-zero counts. Runs under this test's own names (the demo derives its
 * `-demo` database, prefix and queues from them), which are removed after.
 */
import { spawnSync } from "node:child_process";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, pulseFeeds } from "../../src/core/config.ts";
import { demoEnvironment, resetDemoState } from "../../src/demo/demo-config.ts";
import { createTestEnvironment, SERVICES, type TestEnvironment } from "../support/test-environment.ts";

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment("demo");
});
afterAll(async () => {
  const demo = loadConfig(demoEnvironment(env.env, { taskclusterRootUrl: "http://127.0.0.1:1", clonesDir: env.clonesDir }));
  await resetDemoState(demo).catch(() => {});
  const connection = await amqp.connect(SERVICES.amqp);
  for (const exchange of new Set([...Object.values(demo.pulse.exchanges), ...pulseFeeds(demo).map((feed) => feed.poisonExchange)])) {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    await channel.deleteExchange(exchange).catch(() => {});
    await channel.close().catch(() => {});
  }
  await connection.close();
  await env.cleanup();
});

describe("pulse-bridge demo", () => {
  it("exits 0 and prints a summary with non-zero counts and the dashboard URL", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "demo", "--timeout", "60"], {
      env: { ...process.env, ...env.env, DASHBOARD_PORT: "0", LOG_LEVEL: "warn" },
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const count = (what: string) => Number(new RegExp(`^\\s+${what}:\\s+(\\d+)$`, "m").exec(run.stdout)?.[1] ?? 0);
    for (const what of ["repositories", "pushes", "changesets", "comparisons"]) expect(count(what), `${what} in:\n${run.stdout}`).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/dashboard:\s+http:\/\/127\.0\.0\.1:\d+\/queues/);
  });
});
