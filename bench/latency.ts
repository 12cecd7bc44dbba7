/**
 * Pulse publish → job active latency (README, "Figures") at a steady rate.
 *
 * A real `node dist/cli.js bridge` process consumes the local broker; this
 * process publishes distinct task-completed messages at --rate msg/s for
 * --duration seconds and runs a BullMQ worker on tc-ingest whose processor
 * only notes when each job became active. Latency = active time − publish
 * time, per message, both read from this process's clock.
 *
 *   npm run build && npm run bench:latency [-- --rate 1000 --duration 30]
 *
 * Uses the machine's RabbitMQ, Redis and PostgreSQL under names of its own,
 * removed at the end.
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import amqp from "amqplib";
import { Worker } from "bullmq";
import type { TcIngestJob } from "../src/contract/contracts.ts";
import { pulseFeeds } from "../src/core/config.ts";
import { createRedis } from "../src/core/redis.ts";
import { declareExchanges, openPublisher, taskCompletedMessage } from "../test/support/pulse.ts";
import { createTestEnvironment, SERVICES } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    duration: { type: "string", default: "30" },
    // The first seconds include connection set-up and JIT warm-up.
    warmup: { type: "string", default: "3" },
  },
});
const rate = Number(values.rate);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const total = Math.round(rate * durationS);

const env = await createTestEnvironment("bench-latency");
const published = new Map<string, number>();
const latencies: number[] = [];
let seen = 0;

const bridge = spawn(process.execPath, ["dist/cli.js", "bridge"], {
  env: { ...process.env, ...env.env, LOG_LEVEL: "warn" },
  stdio: ["ignore", "ignore", "inherit"],
});
const bridgeExited = new Promise<number | null>((resolve) => bridge.on("exit", resolve));
const connection = createRedis(env.config.redis.url, "worker");
const worker = new Worker<TcIngestJob>(
  "tc-ingest",
  async (job) => {
    const at = performance.now();
    const sent = published.get(job.data.taskId);
    seen++;
    if (sent !== undefined && at - sent >= 0 && sent >= warmupEnd) latencies.push(at - sent);
  },
  { connection, prefix: env.config.redis.prefix, concurrency: 100 },
);
worker.on("error", () => {});
let warmupEnd = Infinity;

try {
  const publisher = await openPublisher();
  await declareExchanges(publisher, env.config);
  // The bridge declares and binds its queues on connect; wait until it consumes.
  // (A passive check of a queue not yet declared closes its channel: one channel per probe.)
  const probe = await amqp.connect(SERVICES.amqp);
  await waitFor(
    "the bridge to consume",
    async () => {
      const channel = await probe.createChannel();
      channel.on("error", () => {});
      const { consumerCount } = await channel.checkQueue(pulseFeeds(env.config).find((feed) => feed.kind === "taskcluster")!.queue);
      await channel.close();
      return consumerCount > 0;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  await probe.close();

  const started = performance.now();
  warmupEnd = started + warmupS * 1000;
  // Publish in 10 ms ticks, catching up on the schedule rather than drifting.
  const tickMs = 10;
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    while (sent < due) {
      const message = taskCompletedMessage(sent, env.config);
      published.set(message.taskId, performance.now());
      publisher.channel.publish(message.exchange, message.routingKey, Buffer.from(JSON.stringify(message.body)), {
        ...message.options,
        contentType: "application/json",
      });
      sent++;
    }
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
  await publisher.channel.waitForConfirms();
  const publishSeconds = (performance.now() - started) / 1000;
  await waitFor(`all ${total} jobs to become active`, () => seen >= total, { timeoutMs: 120_000, intervalMs: 100 });
  await publisher.close();

  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
  console.log(
    `publish → job active, ${total} task-completed messages at ${rate} msg/s (achieved ${(total / publishSeconds).toFixed(0)} msg/s), first ${warmupS} s excluded (${latencies.length} measured)`,
  );
  console.log(`p50 ${pick(0.5)} ms   p90 ${pick(0.9)} ms   p99 ${pick(0.99)} ms   max ${latencies.at(-1)!.toFixed(1)} ms`);
} finally {
  bridge.kill("SIGTERM");
  await bridgeExited;
  await worker.close();
  connection.disconnect();
  await env.cleanup();
}
