/**
 * `replay --dead-letter [--id ID]`: sends dead letters through the bridge's
 * normal routing again (routeMessage with today's code and configuration).
 * - now valid: the job is added (deterministic id, so a replay twice, or a
 *   job the bridge already made from a redelivery, adds nothing) and the dead
 *   letter is removed once Redis has the job;
 * - now a message we ignore: the dead letter is removed;
 * - still invalid: it stays, with the reason reported.
 */
import type { Job } from "bullmq";
import type { DeadLetterJob } from "../contract/contracts.ts";
import { addJob, type Queues } from "../contract/queues.ts";
import { type Config, pulseFeeds } from "../core/config.ts";
import { type IncomingMessage, routeMessage } from "../routing/route-message.ts";

export interface DeadLetterOutcome {
  id: string;
  outcome: "enqueued" | "ignored" | "still-invalid" | "unroutable";
  /** The job added (enqueued), or the reason it stays / was ignored. */
  detail: string;
}

export interface DeadLetterReplaySummary {
  dryRun: boolean;
  examined: number;
  enqueued: number;
  ignored: number;
  stillInvalid: number;
  outcomes: DeadLetterOutcome[];
}

const PAGE = 500;
// Nobody consumes the dead-letter queue, so letters wait; the other states
// cover a letter moved by hand in Bull Board.
const STATES = ["waiting", "delayed", "prioritized", "failed", "completed"] as const;

export async function replayDeadLetters(
  config: Config,
  queues: Queues,
  options: { id?: string; limit?: number; dryRun?: boolean } = {},
): Promise<DeadLetterReplaySummary> {
  const queue = queues["dead-letter"];
  const letters: Array<Job<DeadLetterJob>> = [];
  if (options.id) {
    const job = await queue.getJob(options.id);
    if (!job) throw new Error(`no dead letter with id ${JSON.stringify(options.id)}`);
    letters.push(job);
  } else {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    for (let start = 0; letters.length < limit; start += PAGE) {
      const page = (await queue.getJobs([...STATES], start, start + PAGE - 1, true)) as Array<Job<DeadLetterJob>>;
      letters.push(...page.filter(Boolean).slice(0, limit - letters.length));
      if (page.length < PAGE) break;
    }
  }

  const feeds = pulseFeeds(config);
  const summary: DeadLetterReplaySummary = {
    dryRun: Boolean(options.dryRun),
    examined: letters.length,
    enqueued: 0,
    ignored: 0,
    stillInvalid: 0,
    outcomes: [],
  };
  for (const letter of letters) {
    const id = letter.id!;
    const original = letter.data?.message;
    const feed = original && feeds.find((f) => f.connection === original.connection && f.kind === original.feed);
    if (!original || !feed) {
      summary.stillInvalid++;
      summary.outcomes.push({
        id,
        outcome: "unroutable",
        detail: original ? `no feed ${original.feed} on connection ${original.connection} in this configuration` : "the dead letter holds no message",
      });
      continue;
    }
    if (original.truncated) {
      // Only a prefix was kept (job-requests.ts): replaying it would route a different message.
      summary.stillInvalid++;
      summary.outcomes.push({
        id,
        outcome: "unroutable",
        detail: `cannot be replayed in full: only the first bytes of its ${original.truncated.bytes}-byte body were kept (sha256 ${original.truncated.sha256})`,
      });
      continue;
    }
    const message: IncomingMessage = {
      feed,
      exchange: original.exchange,
      routingKey: original.routingKey,
      content: Buffer.from(original.body, original.bodyEncoding === "base64" ? "base64" : "utf8"),
      headers: original.headers ?? {},
      redelivered: original.redelivered,
      receivedAt: new Date(original.receivedAt),
    };
    const decision = routeMessage(message, config);
    if (decision.action === "dead-letter") {
      summary.stillInvalid++;
      summary.outcomes.push({ id, outcome: "still-invalid", detail: decision.job.data.reason });
      continue;
    }
    if (decision.action === "enqueue") {
      summary.enqueued++;
      summary.outcomes.push({ id, outcome: "enqueued", detail: `${decision.job.queue} ${decision.job.opts.jobId}` });
      if (!options.dryRun) await addJob(queues, decision.job);
    } else {
      summary.ignored++;
      summary.outcomes.push({ id, outcome: "ignored", detail: decision.reason });
    }
    // Only after Redis has the job: a crash in between leaves the letter, and
    // replaying it again adds nothing (same job id).
    if (!options.dryRun) await letter.remove();
  }
  return summary;
}
