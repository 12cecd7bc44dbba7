/**
 * A hostile sender's message that amqplib cannot decode on a normal stack
 * (headers nested 9,000 levels deep), between ordinary messages, through the
 * real `node dist/cli.js bridge` process with the default PULSE_PREFETCH and
 * PULSE_DELIVERY_LIMIT: the process never exits, the messages behind it are
 * enqueued within seconds, the broker moves it to the poison queue after the
 * delivery limit, no innocent message goes there, /metrics shows it, and
 * `replay --poison` turns it into a job (valid body) or a dead letter
 * (invalid body) that the operator sees.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeAll, expect, it } from "vitest";
import { type PulseFeed, pulseFeeds } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { startDashboard } from "../../src/dashboard/server.ts";
import { type BridgeProcess, CLI_PATH, spawnBridgeProcess, useBridgeProcessSetting } from "../support/bridge-process.ts";
import { publishDeepHeaders } from "../support/deep-headers.ts";
import { queueDepth, taskCompletedMessage } from "../support/pulse.ts";
import { waitFor } from "../support/wait-for.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cli = CLI_PATH;
const run = promisify(execFile);
/** The header in which the reader notes what it dropped (src/pulse/shallow-headers.ts). */
const DROPPED_HEADERS_NOTE = "x-pulse-bridge-dropped-headers";

let feed: PulseFeed;
const t = useBridgeProcessSetting("bridge-poison");

// The defaults of PULSE_PREFETCH (200) and PULSE_DELIVERY_LIMIT (10) on purpose.
beforeAll(() => {
  feed = pulseFeeds(t.env.config).find((f) => f.kind === "taskcluster")!;
});

function runBridge(): BridgeProcess {
  return spawnBridgeProcess({ ...t.env.env, LOG_LEVEL: "info" });
}

/** waitFor, failing at once (with the process's last words) if the bridge exits meanwhile. */
async function whileAlive<T>(bridge: BridgeProcess, what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const died = bridge.exited.then((code) => {
    throw new Error(
      `the bridge process exited (code ${code}) while waiting for ${what}; its last log lines:\n${bridge.logs().trim().split("\n").slice(-8).join("\n")}`,
    );
  });
  died.catch(() => {});
  return Promise.race([waitFor(what, probe, { timeoutMs, intervalMs: 100 }), died]);
}

const jobIdOf = (taskId: string) => `tc|${new URL(t.env.config.taskcluster.rootUrl).host}|${taskId}|0`;

async function present(ids: string[]): Promise<number> {
  return (await Promise.all(ids.map((id) => t.queues["tc-ingest"].getJob(id)))).filter(Boolean).length;
}

async function total(queue: "tc-ingest" | "dead-letter"): Promise<number> {
  return Object.values(await t.queues[queue].getJobCounts()).reduce((a, b) => a + b, 0);
}

it("undecodable headers between ordinary messages: the process survives, the rest flows, the poison is parked and replayed", async () => {
  const config = t.env.config;
  const bridge = runBridge();
  try {
    await whileAlive(bridge, "the bridge to consume its three queues", async () => (bridge.logs().match(/consuming from Pulse/g)?.length ?? 0) >= 3);

    const innocent = Array.from({ length: 140 }, (_, i) => taskCompletedMessage(i, config));
    const publish = (from: number, to: number) =>
      t.publisher.publishMany(innocent.slice(from, to).map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));
    // A: a valid task-completed body (its job would be fine) with hostile headers.
    const poisonA = taskCompletedMessage(1000, config);
    // B: hostile headers and a body that is not even JSON.
    const poisonB = taskCompletedMessage(1001, config);

    await publish(0, 20);
    const poisonedAt = Date.now();
    await publishDeepHeaders(poisonA.exchange, poisonA.routingKey, poisonA.body, poisonA.options);
    await publish(20, 120);
    await publishDeepHeaders(poisonB.exchange, poisonB.routingKey, "this is not JSON", poisonB.options);
    await publish(120, 140);

    // (b) The message right behind the poison is a job within seconds.
    await whileAlive(bridge, "the message right behind poison A", async () => (await present([jobIdOf(innocent[20]!.taskId)])) === 1);
    const behindMs = Date.now() - poisonedAt;
    expect(behindMs).toBeLessThan(30_000);
    const ids = innocent.map((m) => jobIdOf(m.taskId));
    await whileAlive(bridge, "every ordinary message as a job", async () => (await present(ids)) === ids.length);

    // (c) Both poisons are in the poison queue, after the bounded deliveries; the feed's queue is empty.
    await whileAlive(bridge, "both poisons in the poison queue", async () => (await queueDepth(feed.poisonQueue))?.ready === 2);
    await whileAlive(bridge, "the feed's queue empty and acked", async () => {
      const depth = await queueDepth(feed.queue);
      return depth?.ready === 0 && depth.unacked === 0;
    });

    // (a) The process is still running; the overflow was a logged connection error, not a crash.
    expect(bridge.child.exitCode).toBeNull();
    const logs = bridge.logs();
    expect(logs).toMatch(
      /"msg":"broker connection error"[^\n]*Maximum call stack size exceeded|Maximum call stack size exceeded[^\n]*"msg":"broker connection error"/,
    );
    expect(logs).toContain('"careful":true');
    // (d) No innocent message was dead-lettered (poison queue holds exactly the two), none was enqueued twice, nothing else was refused.
    expect((await queueDepth(feed.poisonQueue))!.ready).toBe(2);
    expect(await total("tc-ingest")).toBe(ids.length);
    expect(await total("dead-letter")).toBe(0);
    console.log(`poison test: the message behind the poison became a job ${behindMs} ms after the poison was published`);

    // The operator sees it in /metrics.
    const log = createLogger("silent", "poison-test");
    const lifecycle = new Lifecycle(log);
    try {
      const dashboard = await startDashboard({ config: t.env.configWith({ DASHBOARD_PORT: "0" }), log, lifecycle });
      const metrics = await (await fetch(`${dashboard.url}/metrics`)).text();
      expect(metrics).toContain(`pulse_bridge_pulse_queue_messages{queue="${feed.poisonQueue}",connection="pulse",state="ready"} 2`);
    } finally {
      await lifecycle.shutdown();
    }

    // (e) replay --poison: a dry run changes nothing, then A becomes its job and B a dead letter.
    const cliEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...t.env.env };
    const dry = await run(process.execPath, [cli, "replay", "--poison", "--dry-run"], { cwd: root, env: cliEnv });
    expect(dry.stdout).toMatch(new RegExp(`${feed.poisonQueue}: 2 examined, 1 would be enqueued, 1 would be dead-lettered`));
    expect((await queueDepth(feed.poisonQueue))!.ready).toBe(2);

    const replay = await run(process.execPath, [cli, "replay", "--poison"], { cwd: root, env: cliEnv });
    expect(replay.stdout).toContain(
      `from ${feed.queue}, delivery_limit): enqueued (tc-ingest ${jobIdOf(poisonA.taskId)}; headers dropped: deep (nested deeper than 16 levels))`,
    );
    expect(replay.stdout).toMatch(new RegExp(`${feed.poisonQueue}: 2 examined, 1 enqueued, 1 dead-lettered, 0 ignored, 0 kept`));
    expect((await queueDepth(feed.poisonQueue))!.ready).toBe(0);

    const job = await t.queues["tc-ingest"].getJob(jobIdOf(poisonA.taskId));
    expect(job?.data.message.exchange).toBe(poisonA.exchange);
    expect(job?.data.message.routingKey).toBe(poisonA.routingKey);
    expect(job?.data.message.headers).toMatchObject({
      CC: [`route.${config.pulse.tcRoute}`],
      [DROPPED_HEADERS_NOTE]: expect.stringContaining("deep (nested deeper than 16 levels)"),
    });
    const [letter] = await t.queues["dead-letter"].getJobs(["waiting", "delayed", "prioritized", "failed", "completed"]);
    expect(letter?.data.reason).toMatch(/body is not JSON/);
    expect(letter?.data.message).toMatchObject({ exchange: poisonB.exchange, routingKey: poisonB.routingKey, feed: "taskcluster" });

    // Replaying again finds nothing; the bridge is still there and stops cleanly.
    const again = await run(process.execPath, [cli, "replay", "--poison"], { cwd: root, env: cliEnv });
    expect(again.stdout).toContain(`${feed.poisonQueue}: 0 examined`);
    expect(bridge.child.exitCode).toBeNull();
    bridge.child.kill("SIGTERM");
    expect(await bridge.exited).toBe(0);
  } finally {
    bridge.child.kill("SIGKILL");
  }
}, 180_000);
