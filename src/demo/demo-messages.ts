/**
 * The messages upstream would send about the demo's pushes and task, in
 * their real formats (test/fixtures/formats): an hgpushes changegroup.1 per
 * hg push, a Taskcluster-GitHub push event, and task-completed with the elmo
 * route in its CC header. Published with confirms on the demo's own
 * prefixed exchanges (demoExchanges refuses Pulse's real names).
 */
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import type { Config } from "../core/config.ts";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";
import { demoExchanges } from "./demo-config.ts";
import { type DemoUpstreams, TASK_PLACEMENT } from "./demo-upstreams.ts";

export async function publishDemoMessages(config: Config, { hgPushes, gitPush, taskId, taskGroupId }: DemoUpstreams): Promise<void> {
  const exchanges = demoExchanges(config);
  const connection = await amqp.connect(config.pulse.url, AMQP_SOCKET_OPTIONS);
  connection.on("error", () => {});
  const channel = await connection.createConfirmChannel();
  channel.on("error", () => {});
  const publish = (exchange: string, routingKey: string, body: unknown, headers?: Record<string, unknown>) =>
    channel.publish(exchange, routingKey, Buffer.from(JSON.stringify(body)), {
      persistent: true,
      contentType: "application/json",
      contentEncoding: "utf-8",
      ...(headers ? { headers } : {}),
    });
  try {
    for (const a of hgPushes) {
      const startId = a.push.pushid - 1;
      publish(exchanges.hgpushes, a.path, {
        payload: {
          type: "changegroup.1",
          data: {
            repo_url: a.repoUrl,
            heads: a.heads,
            source: "serve",
            pushlog_pushes: [
              {
                pushid: a.push.pushid,
                user: a.push.user,
                time: a.push.time,
                push_json_url: `${a.repoUrl}/json-pushes?version=2&startID=${startId}&endID=${a.push.pushid}`,
                push_full_json_url: `${a.repoUrl}/json-pushes?version=2&full=1&startID=${startId}&endID=${a.push.pushid}`,
              },
            ],
          },
        },
        _meta: { exchange: "exchange/hgpushes/v2", routing_key: a.path, serializer: "json", sent: new Date().toISOString().replace("Z", "") },
      });
    }
    const [organization, repository] = gitPush.fullName.split("/") as [string, string];
    const htmlUrl = gitPush.repoUrl.replace(/\.git$/, "");
    publish(exchanges.taskclusterGithubPush, `primary.${organization}.${repository}`, {
      version: 1,
      organization,
      repository,
      installationId: 1,
      eventId: randomUUID(),
      tasks_for: "github-push",
      branch: "main",
      body: {
        ref: "refs/heads/main",
        before: gitPush.before,
        after: gitPush.after,
        created: false,
        deleted: false,
        forced: false,
        commits: gitPush.commits.map((c) => ({ ...c, distinct: true, tree_id: c.id, url: `${htmlUrl}/commit/${c.id}`, committer: c.author })),
        head_commit: gitPush.commits.at(-1),
        pusher: { name: "l10n-bot", email: "l10n@example.org" },
        repository: { full_name: gitPush.fullName, name: repository, clone_url: gitPush.repoUrl, html_url: htmlUrl, pushed_at: Math.floor(Date.now() / 1000) },
      },
    });
    const now = new Date().toISOString();
    const { provisionerId, workerType, schedulerId } = TASK_PLACEMENT;
    publish(
      exchanges.taskCompleted,
      `primary.${taskId}.0.demo.demo-1.${provisionerId}.${workerType}.${schedulerId}.${taskGroupId}._`,
      {
        status: {
          taskId,
          ...TASK_PLACEMENT,
          taskGroupId,
          priority: "low",
          deadline: now,
          expires: now,
          retriesLeft: 5,
          state: "completed",
          runs: [
            {
              runId: 0,
              state: "completed",
              reasonCreated: "scheduled",
              reasonResolved: "completed",
              workerGroup: "demo",
              workerId: "demo-1",
              takenUntil: now,
              scheduled: now,
              started: now,
              resolved: now,
            },
          ],
        },
        runId: 0,
        task: { tags: { kind: "l10n" } },
        workerGroup: "demo",
        workerId: "demo-1",
        version: 1,
      },
      { CC: [`route.${config.pulse.tcRoute}`] },
    );
    await channel.waitForConfirms();
  } finally {
    await connection.close().catch(() => {});
  }
}
