/**
 * The GitHub webhook receiver against the real services: a local sender
 * signing the real push payload (test/fixtures/formats), a tracked repository
 * on a local git upstream served over http, the real hg-sync worker, and the
 * real bridge for a push that arrives through Pulse as well.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hgSyncJobRequest } from "../../src/contract/job-requests.ts";
import type { Config } from "../../src/core/config.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { createLogger } from "../../src/core/log.ts";
import { webhookDeliveries } from "../../src/core/metrics.ts";
import { trackedGitRepository } from "../../src/jobs/hg-sync/tracked-git-repository.ts";
import { trackRepository } from "../../src/jobs/hg-sync/tracking.ts";
import { type GitUpstream, startGitUpstream } from "../../src/stand-ins/git-upstream.ts";
import { startWebhookReceiver, WEBHOOK_PATH, type WebhookHandle } from "../../src/webhook/receiver.ts";
import { openQueue, startWorker } from "../hg-sync/harness.ts";
import { formatJson } from "../support/formats.ts";
import { deliver, newDeliveryId, pushPayload } from "../support/github-webhook-sender.ts";
import { startPrivateRedis } from "../support/private-redis.ts";
import { startRunningBridge } from "../support/running-bridge.ts";
import { createTestEnvironment, type TestEnvironment } from "../support/test-environment.ts";
import { waitFor } from "../support/wait-for.ts";

const SECRET = "a-webhook-secret-of-the-test-0123456789";
const REPO = "mozilla-l10n/firefox-l10n";
const ZERO = "0".repeat(40);

let env: TestEnvironment;
let git: GitUpstream;
let config: Config;
let receiver: WebhookHandle;
let hook: string;
let worker: Awaited<ReturnType<typeof startWorker>>;
let jobs: ReturnType<typeof openQueue>;
let repositoryId: number;
let lifecycle: Lifecycle;
/** The last commit pushed (the next push's `before`). */
let head = ZERO;

function startReceiver(withConfig: Config, lc: Lifecycle) {
  return startWebhookReceiver({
    config: withConfig,
    log: createLogger(withConfig.logLevel, "test-webhook"),
    lifecycle: lc,
    isTracked: trackedGitRepository(env.db),
  });
}

/** Commits on the upstream and returns the signed-payload options of that push. */
async function pushCommits(count: number, prefix: string) {
  const before = head;
  const commits: string[] = [];
  for (let i = 0; i < count; i++) commits.push(await git.commit(REPO, { [`de/${prefix}-${i}.ftl`]: `${prefix} ${i}\n` }, `${prefix} ${i}`));
  head = commits.at(-1)!;
  return { fullName: REPO, before, after: head, commits };
}

function jobIdOf(delivery: string): string {
  return `git-push|${new URL(git.url).host.replace(/:/g, "_")}/${REPO}|${delivery}`;
}

async function pushesOf(revision: string) {
  return env.db.push.findMany({ where: { repositoryId, changesets: { some: { changeset: { revision } } } }, include: { changesets: true } });
}

beforeAll(async () => {
  env = await createTestEnvironment("webhook", { GITHUB_WEBHOOK_SECRET: SECRET, WEBHOOK_PORT: "0" });
  git = await startGitUpstream();
  config = env.configWith({ GITHUB_URL: git.url });
  const url = await git.createRepo(REPO);
  await pushCommits(2, "initial");
  repositoryId = (await trackRepository(env.db, config.clones.allowedHosts, url)).id;
  lifecycle = new Lifecycle(createLogger("silent", "test"));
  receiver = await startReceiver(config, lifecycle);
  hook = `${receiver.url}${WEBHOOK_PATH}`;
  worker = await startWorker(config);
  jobs = openQueue(config);
});

afterAll(async () => {
  await worker?.stop();
  await lifecycle?.shutdown("test done");
  await jobs?.close();
  await git?.close();
  await env?.cleanup();
});

describe("GitHub webhook receiver", () => {
  it("answers ping, and stores a signed push of a tracked repository within seconds (figure printed)", async () => {
    const ping = await deliver(hook, { zen: "Keep it logically awesome.", hook_id: 292430182 }, { event: "ping", secret: SECRET });
    expect(ping).toMatchObject({ status: 200, body: { outcome: "ping" } });

    const push = await pushCommits(1, "first");
    const delivery = newDeliveryId();
    const started = performance.now();
    const answer = await deliver(hook, pushPayload(push), { delivery, secret: SECRET });
    expect(answer).toMatchObject({ status: 202, body: { outcome: "accepted", detail: jobIdOf(delivery) } });
    const stored = await waitFor("the push's rows", async () => (await pushesOf(push.after)).find((p) => p.eventId === delivery), {
      timeoutMs: 15_000,
      intervalMs: 10,
    });
    const storedMs = performance.now() - started;
    expect(stored).toMatchObject({ source: "webhook", pushId: 1 });
    expect(stored.changesets).toHaveLength(1);
    // First sync of the repository: the older history is stored too, as history.
    expect(await env.db.repositoryChangeset.count({ where: { repositoryId } })).toBe(3);
    console.log(
      `webhook figure: answer in ${answer.ms.toFixed(1)} ms; push rows stored ${storedMs.toFixed(0)} ms after the request (first sync: clone included)`,
    );

    // Small pushes (2 commits) to the now cloned repository: the steady-state figure.
    const answers: number[] = [];
    const rows: number[] = [];
    for (let round = 0; round < 5; round++) {
      const next = await pushCommits(2, `small-${round}`);
      const nextDelivery = newDeliveryId();
      const nextStarted = performance.now();
      const nextAnswer = await deliver(hook, pushPayload(next), { delivery: nextDelivery, secret: SECRET });
      expect(nextAnswer.status).toBe(202);
      const nextPush = await waitFor("a small push's rows", async () => (await pushesOf(next.after)).find((p) => p.eventId === nextDelivery), {
        timeoutMs: 15_000,
        intervalMs: 10,
      });
      rows.push(performance.now() - nextStarted);
      answers.push(nextAnswer.ms);
      expect(nextPush).toMatchObject({ source: "webhook", pushId: round + 2 });
      expect(nextPush.changesets).toHaveLength(2);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(
      `webhook figure: small push (2 commits), 5 rounds: answered in median ${median(answers).toFixed(1)} ms (max ${Math.max(...answers).toFixed(1)}); ` +
        `rows stored median ${median(rows).toFixed(0)} ms after the request (min ${Math.min(...rows).toFixed(0)}, max ${Math.max(...rows).toFixed(0)})`,
    );
  });

  it("a replayed delivery is a duplicate: one job, nothing stored twice", async () => {
    const push = await pushCommits(1, "replayed");
    const delivery = newDeliveryId();
    const payload = pushPayload(push);
    expect((await deliver(hook, payload, { delivery, secret: SECRET })).body.outcome).toBe("accepted");
    await jobs.finished(jobIdOf(delivery));
    const again = await deliver(hook, payload, { delivery, secret: SECRET });
    expect(again).toMatchObject({ status: 200, body: { outcome: "duplicate", detail: jobIdOf(delivery) } });
    expect(await env.db.push.count({ where: { repositoryId, eventId: delivery } })).toBe(1);
  });

  it("refuses unsigned, wrongly signed, tampered, oversized and malformed requests, storing nothing", async () => {
    const push = await pushCommits(1, "refused");
    const payload = pushPayload(push);
    const text = JSON.stringify(payload);
    const before = await jobs.queue.getJobCounts();

    const tampered = Buffer.from(text.replace(`"${push.after}"`, `"${"f".repeat(40)}"`));
    expect(tampered.equals(Buffer.from(text))).toBe(false);
    const cases = [
      ["missing header", await deliver(hook, text, { secret: null }), 401, "unsigned"],
      ["wrong secret", await deliver(hook, text, { secret: "not-the-secret-of-this-hook" }), 401, "bad-signature"],
      [
        "tampered body",
        await deliver(hook, tampered, { secret: null, signature: (await import("../../src/webhook/signature.ts")).sign(SECRET, text) }),
        401,
        "bad-signature",
      ],
      ["signature of another form", await deliver(hook, text, { signature: "sha1=0123" }), 401, "bad-signature"],
      ["5 MB body", await deliver(hook, Buffer.alloc(5 * 1024 * 1024, 0x20), { secret: SECRET }), 413, "too-large"],
      ["5 MB body, chunked", await deliver(hook, Buffer.alloc(5 * 1024 * 1024, 0x20), { secret: SECRET, chunked: true }), 413, "too-large"],
      ["non-JSON", await deliver(hook, "payload=%7B%22ref%22%3A%22x%22%7D", { secret: SECRET }), 400, "malformed"],
      ["form content type", await deliver(hook, text, { secret: SECRET, contentType: "application/x-www-form-urlencoded" }), 400, "malformed"],
      ["not a push body", await deliver(hook, { hello: "world" }, { secret: SECRET }), 400, "malformed"],
      [
        "credentials in a repository URL",
        await deliver(hook, { ...payload, repository: { ...payload.repository, clone_url: "https://user:pw@example.com/x.git" } }, { secret: SECRET }),
        400,
        "malformed",
      ],
      ["bad delivery id", await deliver(hook, text, { secret: SECRET, delivery: "../../etc" }), 400, "malformed"],
      ["another event", await deliver(hook, text, { secret: SECRET, event: "issues" }), 200, "ignored-event"],
    ] as const;
    for (const [what, answer, status, outcome] of cases)
      expect({ what, status: answer.status, outcome: answer.body.outcome }).toEqual({ what, status, outcome });
    // The reason of a malformed push names the field, never echoes the body.
    expect(cases[8][1].body.detail).toMatch(/^invalid GitHub push: /);

    expect(await jobs.queue.getJobCounts()).toEqual(before);
    expect(await pushesOf(push.after)).toHaveLength(0);
  });

  it("acknowledges and counts a push of a repository we do not track, enqueuing nothing", async () => {
    const delivery = newDeliveryId();
    const answer = await deliver(hook, pushPayload({ fullName: "mozilla-l10n/not-tracked", before: ZERO, after: "a".repeat(40), commits: ["a".repeat(40)] }), {
      delivery,
      secret: SECRET,
    });
    expect(answer).toMatchObject({ status: 200, body: { outcome: "untracked" } });
    expect(await jobs.queue.getJob(`git-push|${new URL(git.url).host.replace(/:/g, "_")}/mozilla-l10n/not-tracked|${delivery}`)).toBeUndefined();
  });

  it("answers 503 while Redis is down, and takes the same delivery once it is back", async () => {
    const redis = await startPrivateRedis();
    const down = new Lifecycle(createLogger("silent", "test"));
    try {
      const other = await startReceiver(env.configWith({ GITHUB_URL: git.url, REDIS_URL: redis.url }), down);
      const push = await pushCommits(1, "outage");
      const delivery = newDeliveryId();
      const payload = pushPayload(push);
      await redis.kill();
      const refused = await deliver(`${other.url}${WEBHOOK_PATH}`, payload, { delivery, secret: SECRET });
      expect(refused).toMatchObject({ status: 503, body: { outcome: "unavailable" } });
      expect(refused.ms).toBeLessThan(10_000);
      await redis.start();
      // GitHub's redelivery (same delivery id), until the receiver has reconnected.
      const retried = await waitFor("a retried delivery to be kept", async () => {
        const answer = await deliver(`${other.url}${WEBHOOK_PATH}`, payload, { delivery, secret: SECRET });
        return answer.status === 503 ? undefined : answer;
      });
      expect(retried).toMatchObject({ status: 202, body: { outcome: "accepted", detail: jobIdOf(delivery) } });
      const { Redis } = await import("ioredis");
      const probe = new Redis(redis.url);
      expect(await probe.exists(`${config.redis.prefix}:hg-sync:${jobIdOf(delivery)}`)).toBe(1);
      probe.disconnect();
    } finally {
      await down.shutdown("test done");
      await redis.kill();
    }
  });

  it("a push arriving through Pulse and the webhook is one job and one push", async () => {
    const bridge = await startRunningBridge(config);
    try {
      const push = await pushCommits(1, "both-ways");
      const delivery = newDeliveryId();
      const body = pushPayload(push);
      // Taskcluster's GitHub service republishes GitHub's delivery id as eventId (real message, ours filled in).
      const real = formatJson("github-webhooks/taskcluster-github/treeherder-fixture-github_push.taskcluster-github-v1-push.json")[0].payload;
      await bridge.publisher.publish(config.pulse.exchanges.taskclusterGithubPush, "primary.mozilla-l10n.firefox-l10n", {
        ...real,
        organization: "mozilla-l10n",
        repository: "firefox-l10n",
        eventId: delivery,
        body,
      });
      const pulseJob = await jobs.finished(jobIdOf(delivery));
      expect(pulseJob.data).toMatchObject({ kind: "git-push", eventId: delivery });
      const viaWebhook = await deliver(hook, body, { delivery, secret: SECRET });
      expect(viaWebhook).toMatchObject({ status: 200, body: { outcome: "duplicate", detail: jobIdOf(delivery) } });
      const pushes = await pushesOf(push.after);
      expect(pushes).toHaveLength(1);
      expect(pushes[0]).toMatchObject({ eventId: delivery, source: "pulse" });
      // And the request builder is the one the worker's own helpers use.
      expect(hgSyncJobRequest(pulseJob.data).opts.jobId).toBe(jobIdOf(delivery));
    } finally {
      await bridge.close();
    }
  });

  it("counts every outcome in a fixed label set", async () => {
    const values = new Map((await webhookDeliveries.get()).values.map((v) => [v.labels.outcome, v.value]));
    for (const outcome of [
      "accepted",
      "duplicate",
      "untracked",
      "ignored-event",
      "ping",
      "unsigned",
      "bad-signature",
      "too-large",
      "malformed",
      "unavailable",
    ]) {
      expect({ outcome, counted: (values.get(outcome) ?? 0) > 0 }).toEqual({ outcome, counted: true });
    }
    const metrics = await fetch(`${receiver.url}/metrics`).then((r) => r.text());
    expect(metrics).toContain('pulse_bridge_webhook_deliveries_total{outcome="accepted"}');
    expect((await fetch(`${receiver.url}/healthz`)).status).toBe(200);
    expect((await fetch(hook)).status).toBe(405);
  });
});
