/**
 * The local broker as tests use it: publish like Pulse's publishers do, read
 * queue depths (ready and unacked, as the broker counts them), and break
 * connections or queues the way real Pulse sometimes does. Uses `rabbitmqctl`
 * (tests run as root on the broker's machine); the management plugin is not
 * enabled here.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import amqp, { type ChannelModel, type ConfirmChannel } from "amqplib";
import type { Config } from "../../src/core/config.ts";
import { formatJson } from "./formats.ts";
import { SERVICES } from "./test-environment.ts";

const run = promisify(execFile);

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run("rabbitmqctl", [...args, "-q"], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export interface PublishOptions {
  /** AMQP headers, e.g. Taskcluster's `{CC: ["route.project.l10n.elmo.v1"]}`. */
  headers?: Record<string, unknown>;
  contentType?: string;
}

/** A confirm-channel publisher on the local broker. */
export interface Publisher {
  /** Publishes and waits for the broker's confirm. Objects are sent as JSON; Buffers and strings as is. */
  publish(exchange: string, routingKey: string, body: unknown, options?: PublishOptions): Promise<void>;
  /** Publishes many without waiting for each confirm (then waits for all). */
  publishMany(messages: Array<{ exchange: string; routingKey: string; body: unknown; options?: PublishOptions }>): Promise<void>;
  /** Declares an exchange as Pulse's publishers do (topic, durable). */
  declareExchange(exchange: string): Promise<void>;
  channel: ConfirmChannel;
  close(): Promise<void>;
}

export function encodeBody(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  return Buffer.from(JSON.stringify(body), "utf8");
}

export async function openPublisher(url = SERVICES.amqp): Promise<Publisher> {
  const connection: ChannelModel = await amqp.connect(url, { clientProperties: { connection_name: "pulse-bridge test publisher" } });
  connection.on("error", () => {});
  const channel = await connection.createConfirmChannel();
  channel.on("error", () => {});
  const send = (exchange: string, routingKey: string, body: unknown, options: PublishOptions = {}) =>
    channel.publish(exchange, routingKey, encodeBody(body), {
      persistent: true,
      contentType: options.contentType ?? "application/json",
      contentEncoding: "utf-8",
      ...(options.headers ? { headers: options.headers } : {}),
    });
  return {
    channel,
    async publish(exchange, routingKey, body, options) {
      send(exchange, routingKey, body, options);
      await channel.waitForConfirms();
    },
    async publishMany(messages) {
      let sinceWait = 0;
      for (const message of messages) {
        const ok = send(message.exchange, message.routingKey, message.body, message.options);
        // Respect flow control, and keep the unconfirmed window bounded.
        if (!ok || ++sinceWait >= 1000) {
          await channel.waitForConfirms();
          sinceWait = 0;
        }
      }
      await channel.waitForConfirms();
    },
    async declareExchange(exchange) {
      await channel.assertExchange(exchange, "topic", { durable: true });
    },
    async close() {
      await channel.close().catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

/** Declares every exchange of a test's config (what the publishers would own on real Pulse). */
export async function declareExchanges(publisher: Publisher, config: Config): Promise<void> {
  for (const exchange of Object.values(config.pulse.exchanges)) await publisher.declareExchange(exchange);
}

export interface QueueDepth {
  ready: number;
  unacked: number;
}

/** Ready and unacked messages of a queue, as the broker counts them; undefined when the queue does not exist. */
export async function queueDepth(queue: string): Promise<QueueDepth | undefined> {
  return (await queueDepths([queue])).get(queue);
}

/**
 * Exact ready and unacked counts of every queue of the local broker's default
 * vhost. `rabbitmqctl list_queues` reports a quorum queue's counts from
 * statistics refreshed every few seconds (seen 0/0 for a queue holding 7), so
 * they are asked of the queue itself: its Raft state machine (rabbit_fifo)
 * for quorum queues, the queue process for classic ones.
 */
const EXACT_DEPTHS = `
Depth = fun(Q) ->
  {resource, _, queue, Name} = amqqueue:get_name(Q),
  case amqqueue:get_type(Q) of
    rabbit_quorum_queue ->
      {RaName, Node} = amqqueue:get_pid(Q),
      case ra:local_query({RaName, Node}, fun(S) -> {rabbit_fifo:query_messages_ready(S), rabbit_fifo:query_messages_checked_out(S)} end) of
        {ok, {_, {Ready, Unacked}}, _} -> #{name => Name, ready => Ready, unacked => Unacked};
        Other -> #{name => Name, error => list_to_binary(io_lib:format("~p", [Other]))}
      end;
    _ ->
      Info = rabbit_amqqueue:info(Q, [messages_ready, messages_unacknowledged]),
      #{name => Name, ready => proplists:get_value(messages_ready, Info), unacked => proplists:get_value(messages_unacknowledged, Info)}
  end
end,
io:format("~s~n", [rabbit_json:encode([Depth(Q) || Q <- rabbit_amqqueue:list(<<"/">>)])]).
`;

/**
 * Ready and unacked messages of every queue of the local broker, by name (one
 * rabbitmqctl call). Other test files create and delete queues meanwhile, and
 * a quorum queue caught mid-way answers `{error,badarg}`: such rows are left
 * out, unless they are among `mustRead`, which are asked again (and fail the
 * call if they still cannot be read).
 */
export async function queueDepths(mustRead: string[] = []): Promise<Map<string, QueueDepth>> {
  for (let attempt = 1; ; attempt++) {
    const json = (await rabbitmqctl("eval", EXACT_DEPTHS)).split("\n").find((line) => line.startsWith("["));
    if (!json) throw new Error("rabbitmqctl eval printed no queue list");
    const rows = JSON.parse(json) as Array<{ name: string; ready?: number; unacked?: number; error?: string }>;
    const failed = rows.find((row) => row.error && mustRead.includes(row.name));
    if (!failed) return new Map(rows.filter((row) => !row.error).map((row) => [row.name, { ready: row.ready!, unacked: row.unacked! }]));
    if (attempt >= 5) throw new Error(`could not read the depth of ${failed.name}: ${failed.error}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface BrokerConnection {
  pid: string;
  name: string;
  connectionName: string | undefined;
}

export async function listConnections(): Promise<BrokerConnection[]> {
  // The JSON formatter prints pids as #PID<...>, which close_connection does
  // not accept; the table output has the usable form. Joined by name.
  const rows = JSON.parse(await rabbitmqctl("list_connections", "name", "client_properties", "--formatter", "json")) as Array<{
    name: string;
    client_properties: Array<[string, string, unknown]>;
  }>;
  const pids = new Map(
    (await rabbitmqctl("list_connections", "name", "pid"))
      .split("\n")
      .slice(1)
      .filter(Boolean)
      .map((line) => line.split("\t") as [string, string]),
  );
  return rows
    .filter((row) => pids.has(row.name))
    .map((row) => ({
      pid: pids.get(row.name)!,
      name: row.name,
      // A connection still in its handshake has no client properties yet (the JSON formatter prints that empty list as "").
      connectionName: (Array.isArray(row.client_properties) ? row.client_properties : []).find(([key]) => key === "connection_name")?.[2] as string | undefined,
    }));
}

/** Force-closes (as an operator or a broker restart would) every connection whose connection_name contains `match`. Returns how many. */
export async function closeConnections(match: string, reason = "closed by test"): Promise<number> {
  const targets = (await listConnections()).filter((c) => c.connectionName?.includes(match));
  for (const target of targets) await rabbitmqctl("close_connection", target.pid, reason);
  return targets.length;
}

/** Deletes a queue behind its consumers' backs (Pulse does this to queues over their limit). */
export async function deleteQueue(queue: string, url = SERVICES.amqp): Promise<void> {
  const connection = await amqp.connect(url);
  connection.on("error", () => {});
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    await channel.deleteQueue(queue);
    await channel.close();
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * The n-th of a family of distinct, valid task-completed deliveries (the
 * assembled Firefox-CI example with its own taskId), routed by CC like
 * Taskcluster does. Its job id is `tc|<rootUrl host>|<taskId>|0`.
 */
const taskCompletedDelivery = formatJson("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json");

export function taskCompletedMessage(
  n: number,
  config: Config,
): { exchange: string; routingKey: string; body: Record<string, any>; options: PublishOptions; taskId: string } {
  const delivery = taskCompletedDelivery;
  // The first 8 characters of a slugid are free; the rest keeps the example's valid tail.
  const taskId = `${n.toString(36).padStart(8, "0").slice(-8)}${delivery.body.status.taskId.slice(8)}`;
  const body = { ...delivery.body, status: { ...delivery.body.status, taskId } };
  return {
    exchange: config.pulse.exchanges.taskCompleted,
    routingKey: delivery.fields.routingKey.replace(delivery.body.status.taskId, taskId),
    body,
    options: { headers: { CC: [`route.${config.pulse.tcRoute}`] } },
    taskId,
  };
}
