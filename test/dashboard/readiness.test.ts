/** /healthz and /readyz: readiness follows Redis going away and coming back. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { type DashboardHandle, startDashboard } from "../../src/dashboard/server.ts";
import { type PrivateRedis, startPrivateRedis } from "../support/private-redis.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
let redis: PrivateRedis;
let dashboard: DashboardHandle;
let lifecycle: Lifecycle;

beforeAll(async () => {
  env = await createTestEnvironment("readiness");
  redis = await startPrivateRedis();
  const log = createLogger("silent", "test");
  lifecycle = new Lifecycle(log);
  dashboard = await startDashboard({ config: env.configWith({ REDIS_URL: redis.url, DASHBOARD_PORT: "0" }), log, lifecycle });
});
afterAll(async () => {
  await lifecycle?.shutdown();
  await redis?.kill();
  await env?.cleanup();
});

async function readyz(): Promise<{ status: number; body: { ready: boolean; checks: Record<string, { ok: boolean; error?: string }> } }> {
  const response = await fetch(`${dashboard.url}/readyz`);
  return { status: response.status, body: (await response.json()) as never };
}

describe("health endpoints", () => {
  it("/healthz answers while the process is up", async () => {
    const response = await fetch(`${dashboard.url}/healthz`);
    expect(response.status).toBe(200);
  });

  it("/readyz turns 503 naming Redis when Redis stops, and 200 again when it is back", async () => {
    const healthy = await waitFor("ready", async () => {
      const answer = await readyz();
      return answer.status === 200 ? answer : undefined;
    });
    expect(healthy.body.checks).toMatchObject({ redis: { ok: true }, postgres: { ok: true }, broker: { ok: true } });

    await redis.kill();
    const sick = await waitFor("not ready", async () => {
      const answer = await readyz();
      return answer.status === 503 ? answer : undefined;
    });
    expect(sick.body.ready).toBe(false);
    expect(sick.body.checks.redis!.ok).toBe(false);
    expect(sick.body.checks.redis!.error).toBeTruthy();
    expect(sick.body.checks.postgres!.ok).toBe(true);
    expect(sick.body.checks.broker!.ok).toBe(true);

    await redis.start();
    await waitFor("ready again", async () => (await readyz()).status === 200);
  });
});
