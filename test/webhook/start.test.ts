/**
 * `start` runs the webhook receiver with the other roles when
 * GITHUB_WEBHOOK_SECRET is set (and not otherwise), and closes it with them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { startAllRoles } from "../../src/start/all-roles.ts";
import { WEBHOOK_PATH } from "../../src/webhook/receiver.ts";
import { deliver } from "../support/github-webhook-sender.ts";
import { declareExchanges, openPublisher } from "../support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";

const SECRET = "start-test-secret-0123456789abcdef";
let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment("webhook-start", { DASHBOARD_PORT: "0", WEBHOOK_PORT: "0" });
  const publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
  await publisher.close();
});
afterAll(async () => {
  await env?.cleanup();
});

describe("start and the webhook receiver", () => {
  it("runs it only when the secret is set", async () => {
    for (const secret of [undefined, SECRET]) {
      const config = secret ? env.configWith({ GITHUB_WEBHOOK_SECRET: secret }) : env.config;
      const lifecycle = new Lifecycle(createLogger("silent", "test"));
      try {
        const roles = await startAllRoles({ config, log: createLogger(config.logLevel, "test-start"), lifecycle });
        if (!secret) {
          expect(roles.webhook).toBeUndefined();
          continue;
        }
        expect(roles.webhook).toBeDefined();
        expect(roles.webhook!.port).not.toBe(roles.dashboard.port);
        const pong = await deliver(`${roles.webhook!.url}${WEBHOOK_PATH}`, { zen: "Approachable is better than simple." }, { event: "ping", secret });
        expect(pong).toMatchObject({ status: 200, body: { outcome: "ping" } });
        // The dashboard's /metrics (same process) shows the receiver's counts.
        expect(await fetch(`${roles.dashboard.url}/metrics`).then((r) => r.text())).toContain('pulse_bridge_webhook_deliveries_total{outcome="ping"} 1');
      } finally {
        await lifecycle.shutdown("test done");
      }
    }
  }, 60_000);
});
