/**
 * The run's resolution as announced by the task-completed / task-failed
 * message the job came from (`status.runs[runId]`), so ingest needs no extra
 * Queue API request for it. Jobs without a readable message (replays of
 * hand-made jobs) fall back to the Queue API's status.
 */
import { z } from "zod";
import type { TcIngestJob } from "../../contract/contracts.ts";
import type { RunStatus } from "./queue-api.ts";

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

export function runStatusFromMessage(job: TcIngestJob): RunStatus | undefined {
  const message = job.message;
  if (!message || message.bodyEncoding !== "utf8") return undefined;
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
