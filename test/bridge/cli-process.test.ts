/**
 * The real `node dist/cli.js bridge` process (built by `npm run build`, as CI
 * does before testing): SIGTERM in the middle of a stream exits 0 and loses
 * nothing, and no credential ever reaches its logs, even when the broker
 * refuses the login and the URL is reported.
 */
import { expect, it } from "vitest";
import { startBridge } from "../../src/bridge/bridge.ts";
import { pulseFeeds } from "../../src/core/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { type BridgeProcess, spawnBridgeProcess, useBridgeProcessSetting } from "../support/bridge-process.ts";
import { queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { waitFor } from "../support/wait-for.ts";

const t = useBridgeProcessSetting("bridge-cli");

function runBridge(extraEnv: Record<string, string>): BridgeProcess {
  return spawnBridgeProcess({ ...t.env.env, LOG_LEVEL: "debug", ...extraEnv });
}

async function jobTotal(): Promise<number> {
  return Object.values(await t.queues["tc-ingest"].getJobCounts()).reduce((a, b) => a + b, 0);
}

it("SIGTERM in the middle of a stream: exits 0, every message is a job or still in the queue, and the next bridge makes each a job once", async () => {
  const config = t.env.config;
  // Redis with a password it does not need: ioredis warns and goes on, and the password must not be logged.
  const bridge = runBridge({ REDIS_URL: "redis://:redis-Secret-4711@127.0.0.1:6379" });
  try {
    await waitFor("the bridge to consume its three queues", () => (bridge.logs().match(/consuming from Pulse/g)?.length ?? 0) >= 3);
    const messages = Array.from({ length: 5000 }, (_, i) => taskCompletedMessage(i, config));
    const publishing = t.publisher.publishMany(messages.map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));
    await waitFor("the first jobs", async () => (await jobTotal()) > 0, { intervalMs: 5 });
    bridge.child.kill("SIGTERM");
    expect(await bridge.exited).toBe(0);
    await publishing;

    const tcQueue = pulseFeeds(config).find((feed) => feed.kind === "taskcluster")!.queue;
    const depth = (await queueDepth(tcQueue))!;
    expect(depth.unacked).toBe(0);
    const jobs = await jobTotal();
    // Nothing acked without a job, nothing lost. A message can be both a job
    // and back in the queue when its ack did not take effect before the
    // channel closed (a drain cut short under load; a quorum queue settling
    // the last acks after the close): at most the in-flight window, and the
    // redelivery adds no second job (deterministic ids, checked below).
    const overlap = jobs + depth.ready - messages.length;
    if (overlap !== 0)
      console.log(
        `overlap ${overlap}:`,
        bridge
          .logs()
          .split("\n")
          .filter((l) => !l.includes('"level":20'))
          .join("\n"),
      );
    expect(overlap).toBeGreaterThanOrEqual(0);
    expect(overlap).toBeLessThanOrEqual(config.pulse.prefetch);
    expect(bridge.logs()).toMatch(/bridge stopped/);

    // The rest is taken by the next bridge: each message a job, once.
    const next = await startBridge({ config, log: createLogger("silent", "bridge-test") });
    try {
      await waitFor("the rest enqueued", async () => (await jobTotal()) === messages.length);
      await waitFor("the queue drained", async () => {
        const d = await queueDepth(tcQueue);
        return d?.ready === 0 && d.unacked === 0;
      });
    } finally {
      await next.close();
    }
    // Redelivered messages found their job: one job per message, no more.
    expect(await jobTotal()).toBe(messages.length);
    expect(bridge.logs()).not.toContain("redis-Secret-4711");
  } finally {
    bridge.child.kill("SIGKILL");
  }
});

it("a refused login is logged with the broker URL redacted, and SIGTERM still exits 0", async () => {
  const secret = "pulse-Secret-0815";
  const bridge = runBridge({ PULSE_URL: `amqp://guest:${secret}@127.0.0.1:5672` });
  try {
    await waitFor("the login failure logged", () => bridge.logs().includes("could not connect to the broker"));
    bridge.child.kill("SIGTERM");
    expect(await bridge.exited).toBe(0);
    const logs = bridge.logs();
    expect(logs).toContain("amqp://guest:***@127.0.0.1:5672");
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(encodeURIComponent(secret));
    // Every line is structured JSON (pino).
    for (const line of logs.trim().split("\n")) expect(() => JSON.parse(line), line).not.toThrow();
  } finally {
    bridge.child.kill("SIGKILL");
  }
});
