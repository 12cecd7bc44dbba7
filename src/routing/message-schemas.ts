/**
 * zod schemas of the Pulse messages we turn into jobs (real examples and
 * their upstream sources in test/fixtures/formats, README sections 1-3). Upstream schemas grow
 * (`additionalProperties: false` upstream, new fields every year), so every
 * object is loose: only the fields a job needs are required and checked.
 */
import { z } from "zod";

const hex40 = z.string().regex(/^[0-9a-f]{40}$/i, "must be a 40-hex changeset id");
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

// ---- exchange/hgpushes/v2 ------------------------------------------------

/** `{type, data}`: the v2 payload, bare or inside `{payload, _meta}`. */
export const hgPayload = z.looseObject({
  type: z.string({ error: "must be a string" }).min(1, "must not be empty"),
  data: z.unknown(),
});

export const changegroupData = z.looseObject({
  repo_url: httpUrl,
  heads: z.array(hex40),
  // Sorted by pushid and possibly empty; only the ids matter to the worker,
  // which asks the pushlog for everything after the last push it knows.
  pushlog_pushes: z.array(z.looseObject({ pushid: z.number().int().nonnegative() })),
});

export const newrepoData = z.looseObject({ repo_url: httpUrl });

// ---- exchange/github-webhooks/v1 (raw GitHub body under `payload`) -------
// ---- exchange/taskcluster-github/v1/push (raw GitHub body under `body`) --

/** The GitHub push webhook body: the fields a GitPushJob needs. */
export const githubPushBody = z.looseObject({
  ref: z.string(),
  before: z.string(),
  after: z.string(),
  commits: z.array(z.looseObject({ id: z.string().min(1) })),
  head_commit: z.looseObject({ timestamp: z.string().optional() }).nullish(),
  pusher: z.looseObject({ name: z.string() }),
  repository: z.looseObject({
    full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/, "must be <owner>/<repo>"),
    // GitHub sends a unix time in push events, an ISO string elsewhere.
    pushed_at: z.union([z.number(), z.string()]).nullish(),
  }),
});

export const githubWebhookEnvelope = z.looseObject({
  event: z.string(),
  request_id: z.string().min(1),
  payload: z.unknown(),
});

export const taskclusterGithubPush = z.looseObject({
  organization: z.string().min(1),
  repository: z.string().min(1),
  eventId: z.string().min(1),
  body: z.unknown(),
});

// ---- exchange/taskcluster-queue/v1/task-completed and task-failed --------

// Taskcluster's slugid pattern (constants.yml `slugid-pattern`).
const slugid = z.string().regex(/^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/, "must be a Taskcluster slugid");

export const taskRunMessage = z.looseObject({
  status: z.looseObject({
    taskId: slugid,
    taskGroupId: slugid,
    state: z.string().optional(),
    runs: z
      .array(
        z.looseObject({
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
