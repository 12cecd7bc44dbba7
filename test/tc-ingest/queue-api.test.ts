/** The Queue API client's failure classes, against the stand-in. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PermanentError } from "../../src/core/permanent-error.ts";
import { QueueApi } from "../../src/jobs/tc-ingest/queue-api.ts";
import { type QueueApiStandIn, startQueueApiStandIn } from "../../src/stand-ins/queue-api-server.ts";
import { compareLocalesArtifacts, hex40, realisticElmoJson, slugid, standInTask } from "./fixtures.ts";

let standIn: QueueApiStandIn;
const clients: QueueApi[] = [];
const client = (timeoutMs = 2_000) => {
  const api = new QueueApi(standIn.rootUrl, timeoutMs);
  clients.push(api);
  return api;
};

beforeAll(async () => {
  standIn = await startQueueApiStandIn();
});

afterAll(async () => {
  for (const api of clients) api.close();
  await standIn?.close();
});

describe("Queue API client", () => {
  it("treats a slow Queue API or storage server as transient (timeout), not permanent", async () => {
    const task = standInTask({ artifacts: compareLocalesArtifacts(realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() })) });
    standIn.addTask(task);
    standIn.latencyMs = 300;
    try {
      const api = client(100);
      const slowTask = await api.task(task.taskId).catch((error: Error) => error);
      expect(slowTask).toBeInstanceOf(Error);
      expect(slowTask).not.toBeInstanceOf(PermanentError);
      expect((slowTask as Error).message).toBe(`task ${task.taskId}: request timed out (${standIn.rootUrl})`);
      const slowArtifact = await api.artifactText(task.taskId, 0, "public/compare-locales/elmo.json").catch((error: Error) => error);
      expect(slowArtifact).not.toBeInstanceOf(PermanentError);
      expect((slowArtifact as Error).message).toBe(
        `artifact public/compare-locales/elmo.json of task ${task.taskId} run 0: request timed out (${new URL(standIn.rootUrl).host}/api/queue/v1/task/${task.taskId}/runs/0/artifacts/public%2Fcompare-locales%2Felmo.json)`,
      );
    } finally {
      standIn.latencyMs = 0;
    }
  });

  it("classifies answers: 404, 403 and 424 are permanent; 429, 500 and 503 are retried", async () => {
    const task = standInTask({
      artifacts: [
        { name: "public/elmo.json", storageType: "error" },
        { name: "public/ok.json", content: { ok: true } },
      ],
    });
    standIn.addTask(task);
    const api = client();

    await expect(api.task(slugid())).rejects.toBeInstanceOf(PermanentError);
    await expect(api.listArtifacts(task.taskId, 7)).rejects.toThrow(
      `artifacts of task ${task.taskId} run 7: HTTP 404 ResourceNotFound from ${standIn.rootUrl}`,
    );
    await expect(api.artifactText(task.taskId, 0, "public/elmo.json")).rejects.toThrow(
      `artifact public/elmo.json of task ${task.taskId} run 0: HTTP 424 from ${new URL(standIn.rootUrl).host}/api/queue/v1/task/${task.taskId}/runs/0/artifacts/public%2Felmo.json`,
    );
    await expect(api.artifactText(task.taskId, 0, "public/elmo.json")).rejects.toBeInstanceOf(PermanentError);

    for (const status of [429, 403]) {
      standIn.failNext({ path: new RegExp(`/task/${task.taskId}$`), status });
      const error = await api.task(task.taskId).catch((e: Error) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error instanceof PermanentError).toBe(status === 403);
    }
    // 5xx: retried inside the client first; still failing afterwards it is transient for the job.
    standIn.failNext({ path: new RegExp(`/task/${task.taskId}$`), status: 503, times: 3 });
    const error = await api.task(task.taskId).catch((e: Error) => e);
    expect(error).not.toBeInstanceOf(PermanentError);
    expect((error as Error).message).toMatch(/HTTP 503/);

    standIn.failNext({ server: "storage", path: /public\/ok.json$/, status: 500 });
    await expect(api.artifactText(task.taskId, 0, "public/ok.json")).rejects.not.toBeInstanceOf(PermanentError);
    expect(JSON.parse(await api.artifactText(task.taskId, 0, "public/ok.json"))).toEqual({ ok: true });
  });
});
