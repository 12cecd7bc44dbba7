/**
 * routeMessage on the real examples of test/fixtures/formats and on broken input:
 * the exact job (queue, id, payload) or the exact reason.
 */

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type FeedKind, loadConfig, pulseFeeds } from "../../src/core/config.ts";
import {
  IGNORE_CATEGORIES,
  type IncomingMessage,
  MAX_BODY_BYTES,
  MAX_KEPT_BODY_BYTES,
  type RouteDecision,
  routeMessage,
} from "../../src/routing/route-message.ts";
import { formatJson, formatText } from "../support/formats.ts";

const config = loadConfig({ PULSE_URL: "amqp://bridge:secret@127.0.0.1:5672", TASKCLUSTER_ROOT_URL: "https://tc.example.com" });
const feeds = Object.fromEntries(pulseFeeds(config).map((feed) => [feed.kind, feed])) as Record<FeedKind, ReturnType<typeof pulseFeeds>[number]>;
const ex = config.pulse.exchanges;
const receivedAt = new Date("2026-03-02T14:20:00.000Z");

function message(kind: FeedKind, exchange: string, routingKey: string, body: unknown, headers: Record<string, unknown> = {}): IncomingMessage {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  return { feed: feeds[kind], exchange, routingKey, content, headers, redelivered: false, receivedAt };
}

function enqueued(decision: RouteDecision) {
  if (decision.action !== "enqueue") throw new Error(`expected a job, got ${JSON.stringify(decision).slice(0, 500)}`);
  return decision.job;
}

function deadReason(decision: RouteDecision): string {
  if (decision.action !== "dead-letter") throw new Error(`expected a dead letter, got ${decision.action}`);
  return decision.job.data.reason;
}

describe("hgpushes", () => {
  it("changegroup.1 in its {payload, _meta} envelope becomes an hg-push job keeping the original message", () => {
    const text = formatText("hgpushes/v2-changegroup.1.envelope.json");
    const job = enqueued(routeMessage(message("hgpushes", ex.hgpushes, "mozilla-central", text), config));
    expect(job.queue).toBe("hg-sync");
    expect(job.opts.jobId).toBe("hg-push|hg.mozilla.org/mozilla-central|1");
    expect(job.data).toEqual({
      kind: "hg-push",
      repoUrl: "https://hg.mozilla.org/mozilla-central",
      heads: ["77538e1ce4bec5f7aac58a7ceca2da0e38e90a72"],
      pushIds: [1],
      message: {
        connection: "pulse",
        feed: "hgpushes",
        exchange: ex.hgpushes,
        routingKey: "mozilla-central",
        body: text,
        bodyEncoding: "utf8",
        headers: {},
        redelivered: false,
        receivedAt: receivedAt.toISOString(),
      },
    });
  });

  it("a bare {type, data} changegroup.1 payload is accepted too", () => {
    const job = enqueued(routeMessage(message("hgpushes", ex.hgpushes, "try", formatJson("hgpushes/v2-changegroup.1.payload.docs-verbatim.json")), config));
    expect(job.data).toMatchObject({ kind: "hg-push", repoUrl: "https://hg.mozilla.org/try", pushIds: [120040] });
    expect(job.opts.jobId).toBe("hg-push|hg.mozilla.org/try|120040");
  });

  it("a nested repository path (l10n-central/de) keeps its URL", () => {
    const job = enqueued(
      routeMessage(message("hgpushes", ex.hgpushes, "l10n-central/de", formatJson("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json")), config),
    );
    expect(job.data).toMatchObject({ kind: "hg-push", repoUrl: "https://hg.mozilla.org/l10n-central/de" });
  });

  it("newrepo.1 becomes an hg-newrepo job", () => {
    const job = enqueued(routeMessage(message("hgpushes", ex.hgpushes, "integration/foo_Bar-baz", formatJson("hgpushes/v2-newrepo.1.envelope.json")), config));
    expect(job.queue).toBe("hg-sync");
    expect(job.data).toMatchObject({ kind: "hg-newrepo", repoUrl: "https://hg.mozilla.org/integration/foo_Bar-baz" });
    expect(job.opts.jobId).toBe("hg-newrepo|hg.mozilla.org/integration/foo_bar-baz");
  });

  it("obsolete.1 (all three real shapes) and unknown types are ignored", () => {
    for (const file of ["v2-obsolete.1.rebase.envelope.json", "v2-obsolete.1.prune.envelope.json", "v2-obsolete.1.unknown-precursors.envelope.json"]) {
      expect(routeMessage(message("hgpushes", ex.hgpushes, "obs", formatJson(`hgpushes/${file}`)), config)).toEqual({
        action: "ignore",
        category: "hg-obsolete",
        reason: "hgpushes obsolete.1",
      });
    }
    const future = { payload: { type: "branchmove.1", data: {} }, _meta: {} };
    expect(routeMessage(message("hgpushes", ex.hgpushes, "x", future), config)).toEqual({
      action: "ignore",
      category: "hg-unknown-type",
      reason: "hgpushes type branchmove.1 not handled",
    });
  });

  it("names the failing field of a changegroup.1", () => {
    const body = formatJson("hgpushes/v2-changegroup.1.envelope.json");
    body.payload.data.heads = ["not-a-hash"];
    delete body.payload.data.repo_url;
    const reason = deadReason(routeMessage(message("hgpushes", ex.hgpushes, "mozilla-central", body), config));
    expect(reason).toContain("payload.data.repo_url");
    expect(reason).toContain("payload.data.heads[0]: must be a 40-hex changeset id");
  });

  it("refuses a message that is neither envelope nor bare payload, and the v1 flat payload", () => {
    expect(deadReason(routeMessage(message("hgpushes", ex.hgpushes, "x", { hello: 1 }), config))).toMatch(/neither a \{payload/);
    expect(deadReason(routeMessage(message("hgpushes", ex.hgpushes, "x", formatJson("hgpushes/v1-push.envelope.json")), config))).toMatch(
      /neither a \{payload/,
    );
  });

  it("refuses a wrongly typed type", () => {
    const reason = deadReason(routeMessage(message("hgpushes", ex.hgpushes, "x", { type: 3, data: {} }), config));
    expect(reason).toBe("invalid hgpushes message: type: must be a string");
  });
});

describe("GitHub", () => {
  it("exchange/github-webhooks/v1 push becomes a git-push job", () => {
    const body = formatJson("github-webhooks/github-webhooks-v1-push.envelope.assembled.json");
    const job = enqueued(routeMessage(message("github", ex.githubWebhooks, "mozilla-mobile/android-components/push", body), config));
    expect(job.queue).toBe("hg-sync");
    expect(job.opts.jobId).toBe("git-push|github.com/mozilla-mobile/android-components|6c722d22-4dac-11ea-8d13-04e94ccdb80b");
    expect(job.data).toMatchObject({
      kind: "git-push",
      repoUrl: "https://github.com/mozilla-mobile/android-components",
      eventId: "6c722d22-4dac-11ea-8d13-04e94ccdb80b",
      ref: "refs/heads/master",
      before: "7285afe57ae6207fdb5d6db45133dac2053b7820",
      after: "5fdb785b28b356f50fc1d9cb180d401bb03fc1f1",
      commits: ["8a4cb15deb60e490ec7dfae03ca350bde3688dcb", "5fdb785b28b356f50fc1d9cb180d401bb03fc1f1"],
      pusher: "bors[bot]",
      pushedAt: new Date(1581521353 * 1000).toISOString(),
    });
  });

  it("exchange/taskcluster-github/v1/push becomes the same job (both Treeherder fixtures)", () => {
    const [android, servo] = formatJson<Array<{ routingKey: string; payload: unknown }>>(
      "github-webhooks/taskcluster-github/treeherder-fixture-github_push.taskcluster-github-v1-push.json",
    );
    const a = enqueued(routeMessage(message("github", ex.taskclusterGithubPush, android!.routingKey, android!.payload), config));
    expect(a.opts.jobId).toBe("git-push|github.com/mozilla-mobile/android-components|6c722d22-4dac-11ea-8d13-04e94ccdb80b");
    expect(a.data).toMatchObject({
      kind: "git-push",
      repoUrl: "https://github.com/mozilla-mobile/android-components",
      commits: ["8a4cb15deb60e490ec7dfae03ca350bde3688dcb", "5fdb785b28b356f50fc1d9cb180d401bb03fc1f1"],
      pusher: "bors[bot]",
    });
    const s = enqueued(routeMessage(message("github", ex.taskclusterGithubPush, servo!.routingKey, servo!.payload), config));
    expect(s.data).toMatchObject({
      kind: "git-push",
      repoUrl: "https://github.com/servo/servo",
      eventId: "9b622976-58b9-11ea-9a2d-2d7c4f5293a8",
      ref: "refs/heads/try",
      commits: [],
    });
  });

  it("other GitHub events are ignored; a broken push names its field", () => {
    const body = formatJson("github-webhooks/github-webhooks-v1-push.envelope.assembled.json");
    expect(routeMessage(message("github", ex.githubWebhooks, "o/r/issues", { ...body, event: "issues" }), config)).toEqual({
      action: "ignore",
      category: "github-other-event",
      reason: "github event issues not handled",
    });
    delete body.payload.repository.full_name;
    expect(deadReason(routeMessage(message("github", ex.githubWebhooks, "o/r/push", body), config))).toContain("payload.repository.full_name");
  });
});

describe("Taskcluster", () => {
  const delivery = formatJson("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json");

  it("task-completed (assembled delivery with its CC header) becomes a tc-ingest job with the feed's root URL", () => {
    const job = enqueued(
      routeMessage(message("taskcluster", ex.taskCompleted, delivery.fields.routingKey, delivery.body, delivery.properties.headers), config),
    );
    expect(job.queue).toBe("tc-ingest");
    expect(job.opts.jobId).toBe("tc|tc.example.com|fUAqRKDUTcuyE96IFj1oXw|0");
    expect(job.data).toMatchObject({
      kind: "tc-run",
      rootUrl: "https://tc.example.com",
      taskId: "fUAqRKDUTcuyE96IFj1oXw",
      runId: 0,
      state: "completed",
      taskGroupId: "Fh0B4SPlRuqEDyM2l5GeNA",
      // The worker needs no other part of the message: it is kept for inspection and replay.
      resolved: "2026-03-02T14:16:58.906Z",
    });
    if (job.queue !== "tc-ingest") throw new Error("expected a tc-ingest job");
    expect(job.data.message.headers).toEqual({
      CC: ["route.tc-treeherder.v2.l10n-central.2f77bc4f354d9ba67ea5270b2fc789f4b0521287.7412", "route.project.l10n.elmo.v1"],
    });
    expect(job.data.message.routingKey).toBe(delivery.fields.routingKey);
  });

  it("task-failed is ingested too, with the run's state", () => {
    const body = structuredClone(delivery.body);
    body.status.state = "failed";
    body.status.runs[0].state = "failed";
    const job = enqueued(routeMessage(message("taskcluster", ex.taskFailed, delivery.fields.routingKey, body), config));
    expect(job.data).toMatchObject({ kind: "tc-run", taskId: "fUAqRKDUTcuyE96IFj1oXw", state: "failed" });
  });

  it("carries a null resolution when the message does not announce the run (the worker then asks the Queue API)", () => {
    const body = structuredClone(delivery.body);
    body.runId = 1;
    expect(enqueued(routeMessage(message("taskcluster", ex.taskCompleted, delivery.fields.routingKey, body), config)).data).toMatchObject({
      runId: 1,
      resolved: null,
    });
    body.runId = 0;
    body.status.runs[0].resolved = "yesterday";
    expect(enqueued(routeMessage(message("taskcluster", ex.taskCompleted, delivery.fields.routingKey, body), config)).data).toMatchObject({
      runId: 0,
      resolved: null,
    });
  });

  it("accepts the 2021 verbatim message (no priority) and fields added later", () => {
    const body = { ...formatJson("taskcluster-pulse/task-completed.body.fuzzmanager-test-2021.verbatim.json"), somethingNew: { x: 1 } };
    const job = enqueued(routeMessage(message("taskcluster", ex.taskCompleted, "primary.x", body), config));
    expect(job.data).toMatchObject({ taskId: "Z1kaoRtHRRWyyuMDqadYPA", taskGroupId: "P_zY5AHsRxGBemA-bU1A2A", runId: 0, state: "completed" });
  });

  it("names missing and mistyped fields", () => {
    const body = structuredClone(delivery.body);
    delete body.status.taskId;
    body.runId = "0";
    const reason = deadReason(routeMessage(message("taskcluster", ex.taskCompleted, "primary.x", body), config));
    expect(reason).toMatch(/^invalid task-completed message: /);
    expect(reason).toContain("status.taskId");
    expect(reason).toContain("runId");
  });
});

describe("invalid bodies", () => {
  const kinds: Array<[FeedKind, string]> = [
    ["hgpushes", ex.hgpushes],
    ["github", ex.githubWebhooks],
    ["taskcluster", ex.taskCompleted],
  ];

  it.each(kinds)("%s: not JSON, invalid UTF-8, a JSON array, and a huge body each get a precise reason", (kind, exchange) => {
    expect(deadReason(routeMessage(message(kind, exchange, "k", "{not json"), config))).toMatch(/^body is not JSON: /);
    const invalidUtf8 = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    const decision = routeMessage(message(kind, exchange, "k", invalidUtf8), config);
    expect(deadReason(decision)).toBe("body is not valid UTF-8");
    if (decision.action === "dead-letter") {
      expect(decision.job.data.message).toMatchObject({ bodyEncoding: "base64", body: invalidUtf8.toString("base64") });
    }
    expect(deadReason(routeMessage(message(kind, exchange, "k", "[1,2]"), config))).toBe("body is JSON array, not an object");
    const huge = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    expect(deadReason(routeMessage(message(kind, exchange, "k", huge), config))).toBe(
      `body of ${MAX_BODY_BYTES + 1} bytes exceeds the ${MAX_BODY_BYTES}-byte limit (body truncated to its first ${MAX_KEPT_BODY_BYTES} of ${MAX_BODY_BYTES + 1} bytes)`,
    );
  });

  it("dead letters keep the raw body and have an id derived from it", () => {
    const a = routeMessage(message("hgpushes", ex.hgpushes, "k", "{nope"), config);
    const b = routeMessage(message("hgpushes", ex.hgpushes, "k", "{nope"), config);
    if (a.action !== "dead-letter" || b.action !== "dead-letter") throw new Error("expected dead letters");
    expect(a.job.data.message).toMatchObject({ body: "{nope", bodyEncoding: "utf8", exchange: ex.hgpushes, routingKey: "k" });
    expect(a.job.opts.jobId).toBe(b.job.opts.jobId);
  });

  it("a message on an exchange the feed is not bound to is dead-lettered, not guessed at", () => {
    expect(deadReason(routeMessage(message("taskcluster", "exchange/other", "k", {}), config))).toBe(
      "exchange exchange/other is not one the taskcluster feed is bound to",
    );
  });
});

describe("hostile senders", () => {
  const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

  it("a dead letter keeps at most a 64 KiB prefix of a large body, with its size, sha256 and a truncation note", () => {
    expect(MAX_KEPT_BODY_BYTES).toBe(64 * 1024);
    // Two 5 MB text bodies that differ only at their very end, and a binary one.
    const base = Buffer.alloc(5 * 1024 * 1024, 0x61);
    const first = Buffer.concat([Buffer.from('{"x":"'), base, Buffer.from('1"}')]);
    const second = Buffer.concat([Buffer.from('{"x":"'), base, Buffer.from('2"}')]);
    const binary = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.alloc(5 * 1024 * 1024, 0x80)]);
    const letters = [first, second, binary].map((body) => {
      const decision = routeMessage(message("hgpushes", ex.hgpushes, "k", body), config);
      if (decision.action !== "dead-letter") throw new Error("expected a dead letter");
      return { body, job: decision.job };
    });
    for (const { body, job } of letters) {
      const kept = Buffer.from(job.data.message.body, job.data.message.bodyEncoding === "base64" ? "base64" : "utf8");
      expect(kept.length).toBeLessThanOrEqual(MAX_KEPT_BODY_BYTES);
      expect(body.subarray(0, kept.length).equals(kept)).toBe(true);
      expect(job.data).toMatchObject({ bodyBytes: body.length, bodySha256: sha256(body), bodyTruncated: true });
      expect(job.data.message.truncated).toEqual({ bytes: body.length, sha256: sha256(body) });
      expect(job.data.reason).toMatch(new RegExp(`\\(body truncated to its first ${kept.length} of ${body.length} bytes\\)$`));
      // The whole job, as BullMQ stores it, stays small.
      expect(JSON.stringify(job.data).length).toBeLessThan(100 * 1024);
    }
    expect(letters[2]!.job.data.message.bodyEncoding).toBe("base64");
    // Distinct messages stay distinct although their kept prefixes are equal.
    expect(new Set(letters.map(({ job }) => job.opts.jobId)).size).toBe(3);
  });

  it("a text prefix is cut on a character boundary", () => {
    const body = Buffer.from("é".repeat(MAX_BODY_BYTES));
    const decision = routeMessage(message("hgpushes", ex.hgpushes, "k", body), config);
    if (decision.action !== "dead-letter") throw new Error("expected a dead letter");
    expect(decision.job.data.message.bodyEncoding).toBe("utf8");
    expect(decision.job.data.message.body).toBe("é".repeat(MAX_KEPT_BODY_BYTES / 2));
  });

  it("a small dead letter is kept whole, replayable, with its size and sha256", () => {
    const decision = routeMessage(message("hgpushes", ex.hgpushes, "k", "{nope"), config);
    if (decision.action !== "dead-letter") throw new Error("expected a dead letter");
    expect(decision.job.data).toMatchObject({ bodyBytes: 5, bodySha256: sha256(Buffer.from("{nope")), bodyTruncated: false, redacted: false });
    expect(decision.job.data.message.truncated).toBeUndefined();
  });

  it("ignore reasons are a fixed set whatever the sender's type or event (the metric label), the text stays in `reason`", () => {
    const categories = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const hg = routeMessage(message("hgpushes", ex.hgpushes, "x", { payload: { type: `evil-${i}`, data: {} } }), config);
      const gh = routeMessage(message("github", ex.githubWebhooks, "o/r/x", { event: `evil-${i}`, request_id: "r", payload: {} }), config);
      for (const decision of [hg, gh]) {
        if (decision.action !== "ignore") throw new Error(`expected ignore, got ${decision.action}`);
        categories.add(decision.category);
        expect(decision.reason).toContain(`evil-${i}`);
      }
    }
    expect([...categories].sort()).toEqual(["github-other-event", "hg-unknown-type"]);
    expect(IGNORE_CATEGORIES).toHaveLength(3);
  });

  describe("credentials in repository URLs are refused before any id is built, and masked in the dead letter", () => {
    const changegroup = formatJson("hgpushes/v2-changegroup.1.envelope.json");
    const newrepo = formatJson("hgpushes/v2-newrepo.1.envelope.json");
    const webhook = formatJson("github-webhooks/github-webhooks-v1-push.envelope.assembled.json");
    const [tcPush] = formatJson<Array<{ routingKey: string; payload: any }>>(
      "github-webhooks/taskcluster-github/treeherder-fixture-github_push.taskcluster-github-v1-push.json",
    );
    const cases: Array<[string, IncomingMessage, RegExp]> = [];
    {
      const body = structuredClone(changegroup);
      body.payload.data.repo_url = "https://elmo:hunter2@hg.mozilla.org/mozilla-central";
      cases.push([
        "hg changegroup.1 user:password",
        message("hgpushes", ex.hgpushes, "mozilla-central", body),
        /payload\.data\.repo_url: must not carry credentials/,
      ]);
    }
    {
      const body = structuredClone(newrepo);
      body.payload.data.repo_url = "https://ghp_hunter2token@hg.mozilla.org/integration/x";
      cases.push([
        "hg newrepo.1 token as user",
        message("hgpushes", ex.hgpushes, "integration/x", body),
        /payload\.data\.repo_url: must not carry credentials/,
      ]);
    }
    {
      const body = structuredClone(webhook);
      body.payload.repository.clone_url = "https://x-access-token:hunter2@github.com/mozilla-mobile/android-components.git";
      cases.push([
        "GitHub webhook clone_url",
        message("github", ex.githubWebhooks, "mozilla-mobile/android-components/push", body),
        /payload\.repository\.clone_url: must not carry credentials/,
      ]);
    }
    {
      const payload = structuredClone(tcPush!.payload);
      payload.body.repository.html_url = "https://hunter2@github.com/mozilla-mobile/android-components";
      cases.push([
        "taskcluster-github html_url",
        message("github", ex.taskclusterGithubPush, tcPush!.routingKey, payload),
        /body\.repository\.html_url: must not carry credentials/,
      ]);
    }
    it.each(cases)("%s", (_name, incoming, reason) => {
      const decision = routeMessage(incoming, config);
      expect(deadReason(decision)).toMatch(reason);
      if (decision.action !== "dead-letter") return;
      const stored = JSON.stringify({ id: decision.job.opts.jobId, data: decision.job.data });
      expect(stored).not.toContain("hunter2");
      expect(decision.job.data.redacted).toBe(true);
      expect(decision.job.data.message.body).toContain("***@");
    });
  });
});
