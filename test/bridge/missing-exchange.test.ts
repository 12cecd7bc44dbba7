/**
 * On real Pulse, exchanges belong to their publishers: the bridge only checks
 * them (passively). A missing one is a clear logged error, the rest of the
 * feed works, and the binding is made once the exchange appears.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type BridgeHandle, startBridge } from "../../src/bridge/bridge.ts";
import { closeQueues, openQueues, type Queues } from "../../src/contract/queues.ts";
import type { Config } from "../../src/core/config.ts";
import { createRedis, type Redis } from "../../src/core/redis.ts";
import { formatJson } from "../support/formats.ts";
import { openPublisher, type Publisher } from "../support/pulse.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

let env: TestEnvironment;
let config: Config;
let bridge: BridgeHandle;
let publisher: Publisher;
let redis: Redis;
let queues: Queues;
const lines: Array<Record<string, any>> = [];

beforeAll(async () => {
  env = await createTestEnvironment("bridge-exchanges");
  config = env.configWith({ PULSE_DECLARE_EXCHANGES: "false" });
  publisher = await openPublisher();
  // The publishers of hgpushes and task-failed exist; the others do not (yet).
  await publisher.declareExchange(config.pulse.exchanges.hgpushes);
  await publisher.declareExchange(config.pulse.exchanges.taskFailed);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  bridge = await startBridge({ config, log: pino({ level: "info" }, sink), exchangeRecheckMs: 200 });
  redis = createRedis(config.redis.url, "worker");
  queues = openQueues(redis, config.redis.prefix);
});

afterAll(async () => {
  await bridge?.close();
  await publisher?.close();
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  await env?.cleanup();
});

it("logs the missing exchanges, consumes what exists, and binds an exchange once it appears", async () => {
  await waitFor("every feed consuming", () => bridge.status().feeds.every((f) => f.consuming));
  const status = bridge.status();
  const missing = Object.fromEntries(status.feeds.map((f) => [f.source, f.missingExchanges]));
  expect(missing).toEqual({
    hgpushes: [],
    github: [config.pulse.exchanges.githubWebhooks, config.pulse.exchanges.taskclusterGithubPush],
    taskcluster: [config.pulse.exchanges.taskCompleted],
  });
  const errors = lines.filter((l) => l.level === 50 && /exchange does not exist/.test(l.msg));
  expect(errors.flatMap((l) => l.missing).sort()).toEqual([...missing.github!, ...missing.taskcluster!].sort());

  // What exists works meanwhile.
  await publisher.publish(config.pulse.exchanges.hgpushes, "mozilla-central", formatJson("hgpushes/v2-changegroup.1.envelope.json"));
  await waitFor("the hg job", () => queues["hg-sync"].getJob("hg-push|hg.mozilla.org/mozilla-central|1"));

  // Taskcluster starts publishing task-completed: bound at the next check.
  await publisher.declareExchange(config.pulse.exchanges.taskCompleted);
  await waitFor("the exchange bound", () => bridge.status().feeds.find((f) => f.source === "taskcluster")!.missingExchanges.length === 0);
  expect(lines.some((l) => l.msg === "exchange now exists: bound" && l.exchange === config.pulse.exchanges.taskCompleted)).toBe(true);
  const delivery = formatJson("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json");
  await publisher.publish(config.pulse.exchanges.taskCompleted, delivery.fields.routingKey, delivery.body, { headers: delivery.properties.headers });
  await waitFor("the tc job", () => queues["tc-ingest"].getJob("tc|firefox-ci-tc.services.mozilla.com|fUAqRKDUTcuyE96IFj1oXw|0"));
});
