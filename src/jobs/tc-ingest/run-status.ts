/**
 * The run's resolution as announced by the task-completed / task-failed
 * message the job came from (`status.runs[runId]`), so ingest needs no extra
 * Queue API request for it. The bridge copies it into the job (`resolved`);
 * jobs queued by versions before that field existed have it only in their
 * original message, read here instead. Undefined (a message that did not
 * announce the run, a hand-made job): ingest asks the Queue API's status.
 */
import { z } from "zod";
import type { TcIngestJob } from "../../contract/contracts.ts";
import type { RunStatus } from "./queue-api.ts";

/** `checked`: the job's state and `resolved`, validated (`resolved` undefined: the field is missing). */
export function announcedRunStatus(job: TcIngestJob, checked: { state: string; resolved?: string | null }): RunStatus | undefined {
  if (checked.resolved === undefined) return runStatusFromMessage(job);
  return checked.resolved === null ? undefined : { state: checked.state, resolved: new Date(checked.resolved) };
}

// Jobs queued before `resolved` was part of the payload: read the original message.
const messageBodySchema = z.looseObject({
  status: z.looseObject({
    runs: z.array(
      z.looseObject({
        runId: z.number(),
        state: z.string(),
        resolved: z.iso
          .datetime({ offset: true })
          .transform((value) => new Date(value))
          .optional()
          .catch(undefined),
      }),
    ),
  }),
});

function runStatusFromMessage(job: TcIngestJob): RunStatus | undefined {
  const message = job.message;
  if (message?.bodyEncoding !== "utf8") return undefined;
  let body: unknown;
  try {
    body = JSON.parse(message.body);
  } catch {
    return undefined;
  }
  const parsed = messageBodySchema.safeParse(body);
  const run = parsed.success ? parsed.data.status.runs.find((r) => r.runId === job.runId) : undefined;
  return run && { state: run.state, resolved: run.resolved };
}
