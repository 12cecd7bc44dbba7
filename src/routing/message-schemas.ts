/**
 * zod schemas of the Pulse messages we turn into jobs (real examples and
 * their upstream sources in test/fixtures/formats, README sections 1-3). Upstream schemas grow
 * (`additionalProperties: false` upstream, new fields every year), so no
 * object refuses unknown keys: only the fields a job needs are required and
 * checked. Objects are `z.object` (unknown keys accepted and left out of the
 * output) rather than `z.looseObject` (unknown keys copied into it): routing
 * reads only the declared fields (the job keeps the message's own text), and
 * copying every other field of every message cost the bridge about 1 µs per
 * message (bench:bridge profile). The one exception is a push's `repository`,
 * whose every `*url` field routing checks for credentials.
 */
import { z } from "zod";

const hex40 = z.string().regex(/^[0-9a-f]{40}$/i, "must be a 40-hex changeset id");
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

// ---- exchange/hgpushes/v2 ------------------------------------------------

/** `{type, data}`: the v2 payload, bare or inside `{payload, _meta}`. */
export const hgPayload = z.object({
  type: z.string({ error: "must be a string" }).min(1, "must not be empty"),
  data: z.unknown(),
});

export const changegroupData = z.object({
  repo_url: httpUrl,
  heads: z.array(hex40),
  // Sorted by pushid and possibly empty; only the ids matter to the worker,
  // which asks the pushlog for everything after the last push it knows.
  pushlog_pushes: z.array(z.object({ pushid: z.number().int().nonnegative() })),
});

export const newrepoData = z.object({ repo_url: httpUrl });

// ---- exchange/github-webhooks/v1 (raw GitHub body under `payload`) -------
// ---- exchange/taskcluster-github/v1/push (raw GitHub body under `body`) --

/** The GitHub push webhook body: the fields a GitPushJob needs. */
export const githubPushBody = z.object({
  ref: z.string(),
  before: z.string(),
  after: z.string(),
  commits: z.array(z.object({ id: z.string().min(1) })),
  head_commit: z.object({ timestamp: z.string().optional() }).nullish(),
  pusher: z.object({ name: z.string() }),
  // Loose: refuseRepositoryCredentials (route-message.ts) reads every field.
  repository: z.looseObject({
    full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/, "must be <owner>/<repo>"),
    // GitHub sends a unix time in push events, an ISO string elsewhere.
    pushed_at: z.union([z.number(), z.string()]).nullish(),
  }),
});

export const githubWebhookEnvelope = z.object({
  event: z.string(),
  request_id: z.string().min(1),
  payload: z.unknown(),
});

export const taskclusterGithubPush = z.object({
  organization: z.string().min(1),
  repository: z.string().min(1),
  eventId: z.string().min(1),
  body: z.unknown(),
});

// ---- exchange/taskcluster-queue/v1/task-completed and task-failed --------

// Taskcluster's slugid pattern (constants.yml `slugid-pattern`).
const slugid = z.string().regex(/^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/, "must be a Taskcluster slugid");

export const taskRunMessage = z.object({
  status: z.object({
    taskId: slugid,
    taskGroupId: slugid,
    state: z.string().optional(),
    runs: z
      .array(
        z.object({
          runId: z.number().int(),
          state: z.string().optional(),
          // Carried into the job as is; a malformed time only costs the worker a Queue API request.
          resolved: z.iso.datetime({ offset: true }).optional().catch(undefined),
        }),
      )
      .optional(),
  }),
  runId: z.number().int().min(0).max(1000),
});
