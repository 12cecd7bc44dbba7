/**
 * `pulse-bridge worker tc-ingest`: compare-locales results from Taskcluster
 * into Build and Comparison rows. Jobs are I/O bound (three
 * Queue API round trips and one transaction), so the pool runs several at
 * once (TC_INGEST_CONCURRENCY, --concurrency).
 */
import { PermanentError } from "../../core/permanent-error.ts";
import { TaskclusterHosts } from "../../http/taskcluster-hosts.ts";
import type { PoolDefinition } from "../pool.ts";
import { ingestRun } from "./ingest-run.ts";
import { ingestedBuilds, ingestedComparisons } from "./metrics.ts";
import { QueueApi } from "./queue-api.ts";

const RUN_STATES = new Set(["completed", "failed", "exception"]);

export const tcIngestPool: PoolDefinition<"tc-ingest"> = {
  queue: "tc-ingest",
  defaultConcurrency: (config) => config.tcIngest.concurrency,
  async create({ config, log, db }) {
    // One client per deployment: each job names the root URL it came from,
    // which must be a configured one (a hand-made job could name any host).
    const hosts = TaskclusterHosts.fromConfig(config.taskcluster);
    const clients = new Map<string, QueueApi>();
    const queueApi = (rootUrl: string) => {
      if (!hosts.isConfiguredRoot(rootUrl))
        throw new PermanentError(`root URL ${rootUrl.slice(0, 200)} is not a configured Taskcluster deployment (TASKCLUSTER_ROOT_URL, TC_EXTRA_SOURCES)`);
      let client = clients.get(rootUrl);
      if (!client) {
        client = new QueueApi(rootUrl, config.taskcluster.requestTimeoutMs, {
          hosts,
          maxArtifactBytes: config.tcIngest.elmoJsonMaxBytes,
          maxArtifactBytesName: "ELMO_JSON_MAX_BYTES",
        });
        clients.set(rootUrl, client);
      }
      return client;
    };
    return {
      async process(job) {
        const result = await ingestRun(job.data, { db, log: log.child({ jobId: job.id }), queueApi, maxComparisons: config.tcIngest.elmoJsonMaxComparisons });
        // Label values from a message are bounded to the states Taskcluster knows.
        const state = RUN_STATES.has(result.state) ? result.state : "other";
        ingestedBuilds.inc({ elmo_json: result.elmoJson ? "yes" : "no", state });
        ingestedComparisons.inc(result.comparisons);
        return result;
      },
      async close() {
        for (const client of clients.values()) client.close();
        clients.clear();
      },
    };
  },
};
