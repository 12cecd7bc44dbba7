/**
 * The bridge end to end on the real broker and Redis: each real message kind
 * becomes exactly its job, once; invalid input lands in dead-letter with its
 * reason and raw body; every message is acked and the bridge keeps running.
 */
import type { Job, Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import type { Queues } from "../../src/contract/queues.ts";
import { messagesConsumed, messagesDeadLettered, messagesIgnored } from "../../src/core/metrics.ts";
import { MAX_BODY_BYTES } from "../../src/routing/route-message.ts";
import { formatJson, formatText } from "../support/formats.ts";
import { queueDepths } from "../support/pulse.ts";
import { useRunningBridge } from "../support/running-bridge.ts";
import { waitFor } from "../support/wait-for.ts";

const t = useRunningBridge("bridge");

const ex = () => t.config.pulse.exchanges;
const elmoRoute = () => `route.${t.config.pulse.tcRoute}`;

async function job(queue: keyof Queues, id: string): Promise<Job> {
  return waitFor(`job ${id} in ${queue}`, () => (t.queues[queue] as Queue).getJob(id));
}

async function allAcked(): Promise<void> {
  await waitFor("our queues to be empty and acked", async () => {
    const depths = await queueDepths();
    return t.bridge.status().feeds.every(({ queue }) => depths.get(queue)?.ready === 0 && depths.get(queue)?.unacked === 0);
  });
}

async function metric(counter: typeof messagesConsumed, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k as never] === value)).reduce((sum, v) => sum + v.value, 0);
}

describe("each message kind becomes exactly the right job", () => {
  it("hgpushes changegroup.1 (envelope and bare payload) and newrepo.1", async () => {
    const envelope = formatText("hgpushes/v2-changegroup.1.envelope.json");
    await t.publisher.publish(ex().hgpushes, "mozilla-central", envelope);
    await t.publisher.publish(ex().hgpushes, "try", formatJson("hgpushes/v2-changegroup.1.payload.docs-verbatim.json"));
    await t.publisher.publish(ex().hgpushes, "integration/foo_Bar-baz", formatJson("hgpushes/v2-newrepo.1.envelope.json"));

    const push = await job("hg-sync", "hg-push|hg.mozilla.org/mozilla-central|1");
    expect(push.name).toBe("hg-push");
    expect(push.data).toMatchObject({
      kind: "hg-push",
      repoUrl: "https://hg.mozilla.org/mozilla-central",
      heads: ["77538e1ce4bec5f7aac58a7ceca2da0e38e90a72"],
      pushIds: [1],
    });
    expect(push.data.message).toMatchObject({
      connection: "pulse",
      feed: "hgpushes",
      exchange: ex().hgpushes,
      routingKey: "mozilla-central",
      body: envelope,
      bodyEncoding: "utf8",
      redelivered: false,
    });
    expect((await job("hg-sync", "hg-push|hg.mozilla.org/try|120040")).data).toMatchObject({ kind: "hg-push", pushIds: [120040] });
    expect((await job("hg-sync", "hg-newrepo|hg.mozilla.org/integration/foo_bar-baz")).data).toMatchObject({
      kind: "hg-newrepo",
      repoUrl: "https://hg.mozilla.org/integration/foo_Bar-baz",
    });
    await allAcked();
  });

  it("both GitHub push shapes", async () => {
    const webhook = formatJson("github-webhooks/github-webhooks-v1-push.envelope.assembled.json");
    await t.publisher.publish(ex().githubWebhooks, "mozilla-mobile/android-components/push", webhook);
    const [, servo] = formatJson<Array<{ routingKey: string; payload: unknown }>>(
      "github-webhooks/taskcluster-github/treeherder-fixture-github_push.taskcluster-github-v1-push.json",
    );
    await t.publisher.publish(ex().taskclusterGithubPush, servo!.routingKey, servo!.payload);

    const a = await job("hg-sync", "git-push|github.com/mozilla-mobile/android-components|6c722d22-4dac-11ea-8d13-04e94ccdb80b");
    expect(a.data).toMatchObject({
      kind: "git-push",
      repoUrl: "https://github.com/mozilla-mobile/android-components",
      commits: ["8a4cb15deb60e490ec7dfae03ca350bde3688dcb", "5fdb785b28b356f50fc1d9cb180d401bb03fc1f1"],
    });
    const s = await job("hg-sync", "git-push|github.com/servo/servo|9b622976-58b9-11ea-9a2d-2d7c4f5293a8");
    expect(s.data).toMatchObject({ kind: "git-push", repoUrl: "https://github.com/servo/servo", ref: "refs/heads/try" });
    await allAcked();
  });

  it("task-completed on the primary routing key with the route in CC, and task-failed", async () => {
    const delivery = formatJson("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json");
    // Routed by the CC header (sender-selected distribution), exactly as Taskcluster publishes.
    await t.publisher.publish(ex().taskCompleted, delivery.fields.routingKey, delivery.body, { headers: delivery.properties.headers });
    const failed = formatJson("taskcluster-pulse/task-completed.body.fuzzmanager-test-2021.verbatim.json");
    failed.status.state = "failed";
    failed.status.runs[0].state = "failed";
    await t.publisher.publish(ex().taskFailed, "primary.Z1kaoRtHRRWyyuMDqadYPA.0._._._._._._", failed, { headers: { CC: [elmoRoute()] } });
    // Not on our route: never reaches our queue.
    await t.publisher.publish(
      ex().taskCompleted,
      "primary.other",
      { ...delivery.body, status: { ...delivery.body.status, taskId: "aaaaaaaaSaaaaaaaaaaaaA" } },
      { headers: { CC: ["route.something.else"] } },
    );

    const completed = await job("tc-ingest", "tc|firefox-ci-tc.services.mozilla.com|fUAqRKDUTcuyE96IFj1oXw|0");
    expect(completed.data).toMatchObject({
      kind: "tc-run",
      rootUrl: "https://firefox-ci-tc.services.mozilla.com",
      taskId: "fUAqRKDUTcuyE96IFj1oXw",
      runId: 0,
      state: "completed",
      taskGroupId: "Fh0B4SPlRuqEDyM2l5GeNA",
    });
    expect(completed.data.message.routingKey).toBe(delivery.fields.routingKey);
    expect(completed.data.message.headers).toMatchObject({ CC: delivery.properties.headers.CC });
    expect((await job("tc-ingest", "tc|firefox-ci-tc.services.mozilla.com|Z1kaoRtHRRWyyuMDqadYPA|0")).data).toMatchObject({ state: "failed" });
    await allAcked();
    expect(await t.queues["tc-ingest"].getJob("tc|firefox-ci-tc.services.mozilla.com|aaaaaaaaSaaaaaaaaaaaaA|0")).toBeUndefined();
  });

  it("obsolete.1 and unknown types are acked and counted as ignored", async () => {
    const before = await metric(messagesIgnored, { source: "hgpushes" });
    await t.publisher.publish(ex().hgpushes, "obs", formatJson("hgpushes/v2-obsolete.1.prune.envelope.json"));
    await t.publisher.publish(ex().hgpushes, "x", { payload: { type: "future.1", data: {} }, _meta: {} });
    await waitFor("two ignored messages", async () => (await metric(messagesIgnored, { source: "hgpushes" })) === before + 2);
    await allAcked();
  });

  it("a message delivered again makes no second job", async () => {
    const counts = await t.queues["hg-sync"].getJobCounts();
    const envelope = formatText("hgpushes/v2-changegroup.1.envelope.json");
    const consumed = await metric(messagesConsumed, { source: "hgpushes" });
    await t.publisher.publish(ex().hgpushes, "mozilla-central", envelope);
    await t.publisher.publish(ex().hgpushes, "mozilla-central", envelope);
    await waitFor("both copies consumed", async () => (await metric(messagesConsumed, { source: "hgpushes" })) === consumed + 2);
    await allAcked();
    expect(await t.queues["hg-sync"].getJobCounts()).toEqual(counts);
  });
});

describe("invalid input", () => {
  it("each lands in dead-letter with its reason and raw body; the bridge keeps running", async () => {
    const cases: Array<{ routingKey: string; body: Buffer | string | object; reason: RegExp }> = [
      { routingKey: "not-json", body: "{definitely not json", reason: /^body is not JSON/ },
      { routingKey: "bad-utf8", body: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), reason: /^body is not valid UTF-8$/ },
      { routingKey: "array", body: "[1,2,3]", reason: /^body is JSON array, not an object$/ },
      { routingKey: "missing", body: { payload: { type: "changegroup.1", data: { heads: [] } } }, reason: /payload\.data\.repo_url/ },
      {
        routingKey: "wrong-type",
        body: { payload: { type: "changegroup.1", data: { repo_url: "https://hg.mozilla.org/x", heads: [], pushlog_pushes: [{ pushid: "7" }] } } },
        reason: /payload\.data\.pushlog_pushes\[0\]\.pushid/,
      },
      { routingKey: "huge", body: `{"pad":"${"x".repeat(MAX_BODY_BYTES)}"}`, reason: /exceeds the \d+-byte limit/ },
    ];
    const before = await metric(messagesDeadLettered, { source: "hgpushes" });
    for (const c of cases) await t.publisher.publish(ex().hgpushes, c.routingKey, c.body);
    await waitFor("six dead letters", async () => (await metric(messagesDeadLettered, { source: "hgpushes" })) === before + cases.length);

    const letters = await t.queues["dead-letter"].getJobs(["waiting"], 0, 100);
    for (const c of cases) {
      const letter = letters.find((l) => l.data.message.routingKey === c.routingKey);
      expect(letter, c.routingKey).toBeDefined();
      expect(letter!.data.reason).toMatch(c.reason);
      const raw = Buffer.isBuffer(c.body) ? c.body : Buffer.from(typeof c.body === "string" ? c.body : JSON.stringify(c.body));
      const kept =
        letter!.data.message.bodyEncoding === "base64" ? Buffer.from(letter!.data.message.body, "base64") : Buffer.from(letter!.data.message.body, "utf8");
      if (c.routingKey === "huge") {
        // A large body is kept as a bounded prefix, with its full size and sha256.
        expect(letter!.data).toMatchObject({ bodyTruncated: true, bodyBytes: raw.length });
        expect(kept.length).toBeLessThanOrEqual(64 * 1024);
        expect(kept.equals(raw.subarray(0, kept.length)), "huge keeps the prefix of its raw body").toBe(true);
      } else {
        expect(kept.equals(raw), `${c.routingKey} keeps its raw body`).toBe(true);
      }
    }

    await t.publisher.publish(ex().hgpushes, "l10n-central/de", formatJson("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json"));
    await waitFor("a valid message after the invalid ones", async () =>
      (await t.queues["hg-sync"].getJobs(["waiting"])).some((j) => j.data.repoUrl === "https://hg.mozilla.org/l10n-central/de"),
    );
    await allAcked();
    expect(t.bridge.status()).toMatchObject({ connected: true, paused: false });
  });
});
