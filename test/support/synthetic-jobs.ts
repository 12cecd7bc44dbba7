/** Job payloads for tests of the job machinery itself (history, replay, the board), not of a pool's work. */
import type { OriginalMessage, TcIngestJob } from "../../src/contract/contracts.ts";

export function syntheticMessage(overrides: Partial<OriginalMessage> = {}): OriginalMessage {
  return {
    connection: "pulse",
    feed: "taskcluster",
    exchange: "x",
    routingKey: "r",
    body: "{}",
    bodyEncoding: "utf8",
    headers: {},
    redelivered: false,
    receivedAt: new Date().toISOString(),
    ...overrides,
  };
}

/** A tc-run payload naming `taskId`, pointing at a Queue API nobody serves. */
export function syntheticTcRun(taskId: string): TcIngestJob {
  return { kind: "tc-run", rootUrl: "http://127.0.0.1:1", taskId, runId: 0, state: "completed", taskGroupId: taskId, message: syntheticMessage() };
}
