/**
 * Runs the abuse corpus (./corpus.ts) through the real entry points:
 * routeMessage, a running bridge on the real broker and Redis, the URL policy
 * and clone path with the real hg back end, and the elmo.json schema.
 *
 * "Nothing spawned with an unsafe argument" is checked with fake `hg` and
 * `git` executables first on PATH that record every call into a file: the
 * policy must refuse before any call, and accepted URLs must reach hg only
 * after `--`, with a destination inside CLONES_DIR.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BridgeHandle } from "../../src/bridge/bridge.ts";
import type { Queues } from "../../src/contract/queues.ts";
import { type Config, pulseFeeds } from "../../src/core/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { parseElmoJson } from "../../src/jobs/tc-ingest/elmo-json.ts";
import { type RouteDecision, routeMessage } from "../../src/routing/route-message.ts";
import type { VcsBackend } from "../../src/vcs/backend.ts";
import { clonePathFor } from "../../src/vcs/clone-path.ts";
import { checkRepositoryUrl, RefusedUrlError } from "../../src/vcs/url-policy.ts";
import { type Publisher, queueDepths } from "../support/pulse.ts";
import { type RunningBridge, startRunningBridge } from "../support/running-bridge.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";
import { CORPUS_SIZE, ELMO_CASES, MESSAGE_CASES, type MessageCase, URL_CASES } from "./corpus.ts";

const ALLOWED_HOSTS = "127.0.0.1,hg.mozilla.org,github.com";

let env: TestEnvironment;
let config: Config;
let scratch: string;
let callLog: string;
let hg: VcsBackend;

beforeAll(async () => {
  env = await createTestEnvironment("abuse", { ALLOWED_HOSTS });
  config = env.config;
  scratch = await mkdtemp(path.join(tmpdir(), "pb-abuse-"));
  callLog = path.join(scratch, "calls.log");
  const bin = path.join(scratch, "bin");
  await mkdir(bin);
  for (const tool of ["hg", "git"]) {
    // One record per call: the tool, then each argument on its own line.
    await writeFile(
      path.join(bin, tool),
      `#!/bin/sh\n{ echo "== ${tool}"; for a in "$@"; do printf '%s\\n' "$a"; done; } >> ${JSON.stringify(callLog)}\nexit 0\n`,
    );
    await chmod(path.join(bin, tool), 0o755);
  }
  // The hg back end captures PATH when it is loaded: load it after the change.
  process.env.PATH = `${bin}:${process.env.PATH}`;
  hg = (await import("../../src/vcs/hg.ts")).hgBackend;
});

afterAll(async () => {
  await env?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const log = createLogger("silent", "abuse-test");

async function recordedCalls(): Promise<string[][]> {
  const text = await readFile(callLog, "utf8").catch(() => "");
  return text
    .split("== ")
    .filter(Boolean)
    .map((record) => record.replace(/\n$/, "").split("\n"));
}

/** What the hg-sync worker does with a job's repository URL before touching a clone. */
async function syncAsWorkerWould(url: string): Promise<void> {
  const canonical = checkRepositoryUrl(url, config.clones.allowedHosts);
  await hg.clone(canonical, clonePathFor(env.clonesDir, canonical), { log });
}

function route(entry: MessageCase): RouteDecision {
  const feed = pulseFeeds(config).find((f) => f.kind === entry.feed && f.connection === "pulse")!;
  return routeMessage(
    {
      feed,
      exchange: config.pulse.exchanges[entry.exchange],
      routingKey: entry.routingKey,
      content: entry.body,
      headers: entry.headers ?? {},
      redelivered: false,
    },
    config,
  );
}

it(`the corpus holds at least 30 hostile inputs (${CORPUS_SIZE})`, () => {
  expect(CORPUS_SIZE).toBeGreaterThanOrEqual(30);
});

describe("Pulse messages through routeMessage", () => {
  for (const entry of MESSAGE_CASES) {
    it(`${entry.name} → ${entry.expect.action}`, async () => {
      const decision = route(entry);
      expect(decision.action).toBe(entry.expect.action);
      if (decision.action === "dead-letter" && entry.expect.action === "dead-letter") {
        expect(decision.job.data.reason).toMatch(entry.expect.reason);
        // The raw body is kept for replay (base64 when it is not UTF-8), bounded to 64 KiB.
        expect(decision.job.data.message.body.length).toBeLessThanOrEqual(Math.ceil((64 * 1024) / 3) * 4);
        // Credentials in URLs never stay in a dead letter.
        expect(JSON.stringify(decision.job)).not.toMatch(/:secret@|\/\/secret@|ghp_secret/);
      }
      if (decision.action === "ignore" && entry.expect.action === "ignore") expect(decision.reason).toMatch(entry.expect.reason);
      if (decision.action === "enqueue" && entry.expect.action === "enqueue" && decision.job.queue === "hg-sync") {
        const { repoUrl } = decision.job.data;
        expect(clonePathFor(env.clonesDir, repoUrl).startsWith(env.clonesDir + path.sep)).toBe(true);
        if (entry.expect.refusedBy) {
          const before = (await recordedCalls()).length;
          await expect(syncAsWorkerWould(repoUrl)).rejects.toThrow(entry.expect.refusedBy);
          expect((await recordedCalls()).length).toBe(before);
        }
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  }
});

describe("repository URLs through the URL policy, the clone path and hg", () => {
  for (const entry of URL_CASES) {
    it(`${entry.name} → ${entry.expect === "accepted" ? "accepted, passed after --" : "refused, nothing spawned"}`, async () => {
      // Whatever the text, its clone folder is inside CLONES_DIR.
      expect(clonePathFor(env.clonesDir, entry.url).startsWith(env.clonesDir + path.sep)).toBe(true);
      const before = (await recordedCalls()).length;
      if (entry.expect === "accepted") {
        await syncAsWorkerWould(entry.url);
        const calls = await recordedCalls();
        expect(calls.length).toBe(before + 1);
        const [tool, ...args] = calls.at(-1)!;
        expect(tool).toBe("hg");
        const separator = args.indexOf("--");
        expect(separator).toBeGreaterThan(-1);
        // The URL only after "--"; before it, only its host, as the hg host guard's allowed list.
        expect(args.slice(0, separator).every((arg) => !arg.includes("127.0.0.1") || /^pulsebridge\.allowed-hosts=127\.0\.0\.1(:\d+)?$/.test(arg))).toBe(true);
        const [url, dest] = args.slice(separator + 1);
        expect(url).toBe(checkRepositoryUrl(entry.url, ALLOWED_HOSTS.split(",")));
        expect(dest!.startsWith(env.clonesDir + path.sep)).toBe(true);
      } else {
        const refusal = await syncAsWorkerWould(entry.url).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refusal).toBeInstanceOf(RefusedUrlError);
        expect((refusal as Error).message).toMatch(entry.expect);
        expect((await recordedCalls()).length).toBe(before);
      }
    });
  }

  it("nothing was written outside CLONES_DIR, and nothing inside it by a refused URL", async () => {
    expect((await readdir(scratch)).sort()).toEqual(["bin", "calls.log"]);
    // The fake hg creates nothing, so CLONES_DIR stays empty too.
    expect(await readdir(env.clonesDir)).toEqual([]);
  });
});

describe("elmo.json through its schema", () => {
  for (const entry of ELMO_CASES) {
    it(`${entry.name} → ${entry.reason === "accepted" ? "accepted" : "schema error"}`, () => {
      const parsed = parseElmoJson(entry.text);
      if (entry.reason === "accepted") {
        expect(parsed.ok).toBe(true);
      } else {
        expect(parsed.ok).toBe(false);
        if (!parsed.ok) expect(parsed.reason).toMatch(entry.reason);
      }
      expect(({} as Record<string, unknown>).errors).toBeUndefined();
    });
  }
});

describe("end to end through a running bridge", () => {
  let bridge: BridgeHandle;
  let publisher: Publisher;
  let queues: Queues;
  let running: RunningBridge;

  beforeAll(async () => {
    running = await startRunningBridge(config, { log });
    ({ bridge, publisher, queues } = running);
  });

  afterAll(async () => {
    await running?.close();
  });

  it("every hostile message is acked and lands where routeMessage says, and the bridge keeps running", async () => {
    await publisher.publishMany(
      MESSAGE_CASES.map((entry) => ({
        exchange: config.pulse.exchanges[entry.exchange],
        routingKey: entry.routingKey,
        body: entry.body,
        options: entry.headers ? { headers: entry.headers } : {},
      })),
    );
    await waitFor(
      "every hostile message to be acked",
      async () => {
        const depths = await queueDepths();
        return bridge.status().feeds.every(({ queue }) => depths.get(queue)?.ready === 0 && depths.get(queue)?.unacked === 0);
      },
      { timeoutMs: 60_000 },
    );
    for (const entry of MESSAGE_CASES) {
      const decision = route(entry);
      if (decision.action === "ignore") continue;
      const job = await (queues[decision.job.queue] as Queue).getJob(decision.job.opts.jobId);
      expect(job, `${entry.name}: job ${decision.job.opts.jobId}`).toBeDefined();
      if (decision.action === "dead-letter") expect(job!.data.reason, entry.name).toBe(decision.job.data.reason);
    }
    expect(bridge.status()).toMatchObject({ connected: true, paused: false });
    // Nothing else got in: exactly the dead letters and jobs routeMessage decided.
    const expected = (queue: string) =>
      new Set(MESSAGE_CASES.map(route).flatMap((d) => (d.action !== "ignore" && d.job.queue === queue ? [d.job.opts.jobId] : []))).size;
    expect(await queues["dead-letter"].count()).toBe(expected("dead-letter"));
    expect(await queues["hg-sync"].count()).toBe(expected("hg-sync"));
  });
});
