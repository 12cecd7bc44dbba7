/**
 * Hostile senders against a running bridge on the real broker and Redis:
 * - large distinct invalid messages: each dead letter costs a bounded amount
 *   of Redis (MEMORY USAGE of its job hash, printed), the queue is trimmed to
 *   DEAD_LETTER_MAX_COUNT and letters older than DEAD_LETTER_MAX_AGE go;
 * - a truncated letter is reported as not replayable, a small one replays;
 * - ignored messages with 300 distinct types or events add no metric series;
 * - credentials in repository URLs end up in no Redis key or value.
 */
import type { Job, Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeadLetterJob } from "../../src/contract/contracts.ts";
import { MAX_DEAD_LETTER_BODY_BYTES } from "../../src/contract/job-requests.ts";
import type { Config } from "../../src/core/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { registry } from "../../src/core/metrics.ts";
import { replayDeadLetters } from "../../src/replay/dead-letters.ts";
import { IGNORE_CATEGORIES } from "../../src/routing/route-message.ts";
import { formatJson } from "../support/formats.ts";
import { queueDepths } from "../support/pulse.ts";
import { type RunningBridge, startRunningBridge } from "../support/running-bridge.ts";
import { createTestEnvironment, SERVICES, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

const MAX_COUNT = 20;
const DAY = 24 * 3600 * 1000;

let env: TestEnvironment;
let config: Config;
let running: RunningBridge;
let redis: Redis;
const log = createLogger("silent", "hostile-senders");

/** Old letters, as if received 40 days ago (BullMQ's own `timestamp` option), waiting before the bridge starts. */
async function addAgedLetters(queue: Queue, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `dead|aged-${i}`;
    const data: DeadLetterJob = {
      kind: "dead-letter",
      reason: "old",
      message: {
        connection: "pulse",
        feed: "hgpushes",
        exchange: "x",
        routingKey: "k",
        body: `{old ${i}`,
        bodyEncoding: "utf8",
        headers: {},
        redelivered: false,
        receivedAt: new Date(Date.now() - 40 * DAY).toISOString(),
      },
      bodyBytes: 6,
      bodySha256: "0",
      bodyTruncated: false,
      redacted: false,
    };
    await queue.add("dead-letter", data, { jobId: id, timestamp: Date.now() - 40 * DAY, removeOnComplete: false, removeOnFail: false });
    ids.push(id);
  }
  return ids;
}

async function allAcked(): Promise<boolean> {
  const depths = await queueDepths();
  return running.bridge.status().feeds.every(({ queue }) => depths.get(queue)?.ready === 0 && depths.get(queue)?.unacked === 0);
}

beforeAll(async () => {
  env = await createTestEnvironment("hostile-senders", { DEAD_LETTER_MAX_COUNT: String(MAX_COUNT), ALLOWED_HOSTS: "hg.mozilla.org,github.com" });
  config = env.config;
  redis = new Redis(SERVICES.redis, { maxRetriesPerRequest: 1 });
  // The aged letters wait before the bridge starts: its first retention run finds them.
  const { openQueues, closeQueues } = await import("../../src/contract/queues.ts");
  const setupRedis = new Redis(SERVICES.redis, { maxRetriesPerRequest: null });
  const queues = openQueues(setupRedis, config.redis.prefix);
  await addAgedLetters(queues["dead-letter"], 3);
  await closeQueues(queues);
  setupRedis.disconnect();
  running = await startRunningBridge(config, { log });
}, 60_000);

afterAll(async () => {
  await running?.close();
  redis?.disconnect();
  await env?.cleanup();
});

describe("dead letters from large distinct messages", () => {
  it("letters older than DEAD_LETTER_MAX_AGE (default 30 days) are removed by the bridge", async () => {
    const queue = running.queues["dead-letter"];
    await waitFor(
      "the aged dead letters to be removed",
      async () => (await queue.getJob("dead|aged-0")) === undefined && (await queue.getJob("dead|aged-2")) === undefined,
      { timeoutMs: 15_000 },
    );
  });

  it("each costs a bounded amount of Redis, and the queue is trimmed to DEAD_LETTER_MAX_COUNT", async () => {
    const queue = running.queues["dead-letter"];
    const n = 30;
    const size = 2 * 1024 * 1024;
    const messages = Array.from({ length: n }, (_, i) => {
      // Text and binary alternate; each differs from the others only at its end.
      const body = i % 2 === 0 ? Buffer.alloc(size, 0x61) : Buffer.alloc(size, 0x80);
      if (i % 2 === 1) body[0] = 0xff;
      body.write(`#${i}`, size - 8);
      return { exchange: config.pulse.exchanges.hgpushes, routingKey: `big/${i}`, body };
    });
    await running.publisher.publishMany(messages);
    await waitFor("every large message to be acked", allAcked, { timeoutMs: 60_000 });

    // Measured first (retention may remove some meanwhile: those are skipped).
    const usage: Record<"utf8" | "base64", number[]> = { utf8: [], base64: [] };
    for (const job of (await queue.getWaiting(0, -1)) as Array<Job<DeadLetterJob>>) {
      if (!job.data.message.routingKey.startsWith("big/")) continue;
      const bytes = Number(await redis.call("MEMORY", "USAGE", `${config.redis.prefix}:dead-letter:${job.id}`, "SAMPLES", "0"));
      if (bytes > 0) usage[job.data.message.bodyEncoding].push(bytes);
    }
    const max = (values: number[]) => Math.max(...values);
    console.log(
      `[figure] Redis MEMORY USAGE per dead letter of a ${size}-byte message: text max ${max(usage.utf8)} B, binary max ${max(usage.base64)} B ` +
        `(kept prefix ${MAX_DEAD_LETTER_BODY_BYTES} B; before the bound a letter kept up to 4 MiB: ~5.2 MB text, ~6.3 MB binary per 5 MB message)`,
    );
    expect(usage.utf8.length).toBeGreaterThan(0);
    expect(usage.base64.length).toBeGreaterThan(0);
    // 64 KiB of text, or its base64 (87,384 B), plus the job's other fields.
    expect(max(usage.utf8)).toBeLessThan(96 * 1024);
    expect(max(usage.base64)).toBeLessThan(128 * 1024);

    await waitFor(`the dead-letter queue to be trimmed to ${MAX_COUNT}`, async () => (await queue.getWaitingCount()) === MAX_COUNT, { timeoutMs: 30_000 });
    const letters = (await queue.getWaiting(0, -1)) as Array<Job<DeadLetterJob>>;
    expect(letters).toHaveLength(MAX_COUNT);
    // The newest MAX_COUNT stayed (the oldest went first).
    expect(letters.map((job) => Number(job.data.message.routingKey.split("/")[1])).sort((a, b) => a - b)).toEqual(
      Array.from({ length: MAX_COUNT }, (_, i) => n - MAX_COUNT + i),
    );
    for (const job of letters) {
      expect(job.data).toMatchObject({ bodyBytes: size, bodyTruncated: true });
      expect(job.data.reason).toMatch(/exceeds the 1048576-byte limit \(body truncated to its first 65536 of 2097152 bytes\)/);
    }

    // Everything of the queue in Redis, letters and BullMQ's own keys.
    let total = 0;
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${config.redis.prefix}:dead-letter:*`, "COUNT", 1000);
      cursor = next;
      for (const key of keys) total += Number(await redis.call("MEMORY", "USAGE", key, "SAMPLES", "0"));
    } while (cursor !== "0");
    console.log(`[figure] whole dead-letter queue after ${n} large messages with DEAD_LETTER_MAX_COUNT=${MAX_COUNT}: ${total} B in Redis`);
    expect(total).toBeLessThan(MAX_COUNT * 128 * 1024 + 256 * 1024);
  });

  it("replay says clearly that a truncated letter cannot be replayed in full; a small one takes the normal path", async () => {
    const queue = running.queues["dead-letter"];
    const [letter] = (await queue.getWaiting(0, 0)) as Array<Job<DeadLetterJob>>;
    const summary = await replayDeadLetters(config, running.queues, { id: letter!.id!, dryRun: true });
    expect(summary.outcomes).toEqual([
      {
        id: letter!.id,
        outcome: "unroutable",
        detail: expect.stringMatching(/cannot be replayed in full: only the first bytes of its 2097152-byte body were kept \(sha256 [0-9a-f]{64}\)/),
      },
    ]);

    await running.publisher.publish(config.pulse.exchanges.hgpushes, "small", "{not json");
    const small = await waitFor("the small dead letter", async () =>
      ((await queue.getWaiting(0, -1)) as Array<Job<DeadLetterJob>>).find((job) => job.data.message.routingKey === "small"),
    );
    expect(small!.data).toMatchObject({ bodyBytes: 9, bodyTruncated: false });
    const again = await replayDeadLetters(config, running.queues, { id: small!.id!, dryRun: true });
    expect(again.outcomes[0]).toMatchObject({ outcome: "still-invalid", detail: expect.stringMatching(/^body is not JSON/) });
  });
});

describe("metrics", () => {
  it("300 ignored messages with distinct types (and 300 GitHub events) add no series to messages_ignored_total", async () => {
    const series = async () => (await registry.getSingleMetric("pulse_bridge_messages_ignored_total")!.get()).values;
    const before = (await series()).length;
    const messages = Array.from({ length: 300 }, (_, i) => [
      { exchange: config.pulse.exchanges.hgpushes, routingKey: `x/${i}`, body: { payload: { type: `attacker-type-${i}`, data: {} }, _meta: {} } },
      { exchange: config.pulse.exchanges.githubWebhooks, routingKey: `o/r/e${i}`, body: { event: `attacker-event-${i}`, request_id: `r${i}`, payload: {} } },
    ]).flat();
    await running.publisher.publishMany(messages);
    await waitFor("every ignored message to be acked", allAcked, { timeoutMs: 30_000 });
    await waitFor("the 600 messages to be counted", async () => (await series()).reduce((sum, s) => sum + s.value, 0) >= 600);
    const after = await series();
    console.log(`[figure] messages_ignored_total series: ${before} before, ${after.length} after 600 ignored messages with distinct types/events`);
    expect(after.length).toBeLessThanOrEqual(2);
    for (const s of after) expect(IGNORE_CATEGORIES).toContain(s.labels.reason);
  });
});

describe("credentials in repository URLs", () => {
  it("end up in no Redis key or value: the messages are dead-lettered with the credentials masked", async () => {
    const changegroup = formatJson<any>("hgpushes/v2-changegroup.1.envelope.json");
    changegroup.payload.data.repo_url = "https://elmo:s3cr3t-hg@hg.mozilla.org/mozilla-central";
    const newrepo = formatJson<any>("hgpushes/v2-newrepo.1.envelope.json");
    newrepo.payload.data.repo_url = "https://s3cr3t-token@hg.mozilla.org/integration/new";
    const webhook = formatJson<any>("github-webhooks/github-webhooks-v1-push.envelope.assembled.json");
    webhook.payload.repository.clone_url = "https://x-access-token:s3cr3t-gh@github.com/mozilla-mobile/android-components.git";
    webhook.payload.repository.full_name = "mozilla-mobile/android-components";
    await running.publisher.publishMany([
      { exchange: config.pulse.exchanges.hgpushes, routingKey: "mozilla-central", body: changegroup },
      { exchange: config.pulse.exchanges.hgpushes, routingKey: "integration/new", body: newrepo },
      { exchange: config.pulse.exchanges.githubWebhooks, routingKey: "mozilla-mobile/android-components/push", body: webhook },
    ]);
    await waitFor("the three messages to be dead-lettered", async () => {
      const letters = (await running.queues["dead-letter"].getWaiting(0, -1)) as Array<Job<DeadLetterJob>>;
      return letters.filter((job) => /must not carry credentials/.test(job.data.reason)).length === 3;
    });
    expect(await running.queues["hg-sync"].count()).toBe(0);
    let cursor = "0";
    const leaks: string[] = [];
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${config.redis.prefix}:*`, "COUNT", 1000);
      cursor = next;
      for (const key of keys) {
        if (key.includes("s3cr3t")) leaks.push(key);
        const type = await redis.type(key);
        const text =
          type === "hash"
            ? JSON.stringify(await redis.hgetall(key))
            : type === "string"
              ? await redis.get(key)
              : type === "list"
                ? JSON.stringify(await redis.lrange(key, 0, -1))
                : type === "zset"
                  ? JSON.stringify(await redis.zrange(key, 0, -1))
                  : type === "stream"
                    ? JSON.stringify(await redis.xrange(key, "-", "+"))
                    : "";
        if (text?.includes("s3cr3t")) leaks.push(`${key} (value)`);
      }
    } while (cursor !== "0");
    expect(leaks).toEqual([]);
  });
});
