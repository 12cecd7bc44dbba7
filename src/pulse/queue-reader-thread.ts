/**
 * The worker thread of queue-reader.ts: reads one queue with basic.get on a
 * stack large enough for amqplib's recursive header decoder, and hands each
 * message (headers made shallow) to the main thread, which answers whether to
 * ack it. Erasable TypeScript only (Node runs it with type stripping in
 * development; the build compiles it to .js like everything else).
 *
 * Protocol (messages to the parent):
 *   {type: "message", message}  → parent answers {type: "settle", ack}
 *   {type: "done", read, deleted, missing}
 * In "move-head" mode the thread itself moves the queue's first message to
 * another exchange (as the broker would dead-letter it) and reports it in
 * {type: "moved", message} before "done".
 * Anything thrown ends the thread with an 'error' event in the parent.
 */
import { parentPort, workerData } from "node:worker_threads";
import amqp, { type Channel, type ChannelModel, type GetMessage } from "amqplib";
import { AMQP_SOCKET_OPTIONS } from "./amqp.ts";
import { shallowHeaders } from "./shallow-headers.ts";

export interface ReaderThreadInput {
  url: string;
  queue: string;
  connectionName: string;
  /**
   * "snapshot": the messages present at the start, at most once each.
   * "drain": until empty, then delete the queue if still empty.
   * "move-head": republish the first message to `moveTo` and ack it.
   */
  mode: "snapshot" | "drain" | "move-head";
  moveTo?: { exchange: string; reason: string };
}

export interface ReadMessage {
  exchange: string;
  routingKey: string;
  content: Uint8Array;
  headers: Record<string, unknown>;
  dropped: string[];
  redelivered: boolean;
}

export type ReaderThreadEvent =
  | { type: "message"; message: ReadMessage }
  | { type: "moved"; message: ReadMessage }
  | { type: "done"; read: number; deleted: boolean; missing: boolean };

const port = parentPort!;
const input = workerData as ReaderThreadInput;

function answer(): Promise<boolean> {
  return new Promise((resolve) => port.once("message", (reply: { type: "settle"; ack: boolean }) => resolve(reply.ack)));
}

async function openChannel(connection: ChannelModel): Promise<Channel> {
  const channel = await connection.createChannel();
  channel.on("error", () => {}); // a failed passive check or delete closes the channel; the call rejects too
  return channel;
}

function readMessage(message: GetMessage): ReadMessage {
  const { headers, dropped } = shallowHeaders(message.properties.headers as Record<string, unknown> | undefined);
  return {
    exchange: message.fields.exchange,
    routingKey: message.fields.routingKey,
    content: message.content,
    headers,
    dropped,
    redelivered: message.fields.redelivered,
  };
}

/**
 * Republishes the queue's first message to moveTo.exchange with the headers
 * RabbitMQ's dead-lettering would add (replay --poison reads them), then acks
 * it. Its own headers are kept if amqplib can encode them again (its encoding
 * buffer is 64 KiB), else their shallow form.
 */
async function moveHead(connection: ChannelModel, channel: Channel): Promise<void> {
  const target = input.moveTo!;
  const message = await channel.get(input.queue, { noAck: false });
  if (!message) return void port.postMessage({ type: "done", read: 0, deleted: false, missing: false });
  const read = readMessage(message);
  const death = {
    count: 1,
    reason: target.reason,
    queue: input.queue,
    exchange: message.fields.exchange,
    "routing-keys": [message.fields.routingKey],
    time: { "!": "timestamp", value: Math.floor(Date.now() / 1000) },
  };
  const marks = {
    "x-death": [death],
    "x-first-death-queue": input.queue,
    "x-first-death-reason": target.reason,
    "x-first-death-exchange": message.fields.exchange,
  };
  const confirm = await connection.createConfirmChannel();
  confirm.on("error", () => {});
  const publish = (headers: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) => {
      // Not userId (the broker checks it against our user) nor expiration (kept until replayed).
      const { contentType, contentEncoding, priority, correlationId, messageId, timestamp, type, appId } = message.properties;
      const properties = {
        contentType,
        contentEncoding,
        priority,
        correlationId,
        messageId,
        timestamp,
        type,
        appId,
        persistent: true,
        headers: { ...headers, ...marks },
      };
      confirm.publish(target.exchange, message.fields.routingKey, message.content, properties, (error: unknown) =>
        error ? reject(error instanceof Error ? error : new Error("the broker refused the message")) : resolve(),
      );
    });
  try {
    await publish((message.properties.headers ?? {}) as Record<string, unknown>);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    await publish(read.headers);
  }
  channel.ack(message);
  await channel.close();
  port.postMessage({ type: "moved", message: read });
  port.postMessage({ type: "done", read: 1, deleted: false, missing: false });
}

async function run(): Promise<void> {
  const connection = await amqp.connect(input.url, { ...AMQP_SOCKET_OPTIONS, clientProperties: { connection_name: input.connectionName } });
  connection.on("error", () => {}); // reported through the failing call
  try {
    let channel = await openChannel(connection);
    if (input.mode === "move-head") return await moveHead(connection, channel);
    let limit: number;
    try {
      limit = input.mode === "snapshot" ? (await channel.checkQueue(input.queue)).messageCount : Number.POSITIVE_INFINITY;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return void port.postMessage({ type: "done", read: 0, deleted: false, missing: true });
      throw error;
    }
    let read = 0;
    for (let attempt = 0; ; attempt++) {
      for (; read < limit; read++) {
        const message: GetMessage | false = await channel.get(input.queue, { noAck: false });
        if (!message) break;
        const event: ReaderThreadEvent = { type: "message", message: readMessage(message) };
        port.postMessage(event);
        // Not acked: stays unacked on this channel, so the next get returns the
        // next message; closing the channel puts it back (dry runs, refusals).
        if (await answer()) channel.ack(message);
      }
      if (input.mode === "snapshot") break;
      try {
        await channel.deleteQueue(input.queue, { ifEmpty: true });
        return void port.postMessage({ type: "done", read, deleted: true, missing: false });
      } catch (error) {
        const code = (error as { code?: number }).code;
        if (code === 404) return void port.postMessage({ type: "done", read, deleted: false, missing: true });
        // 406: not empty any more (a message was put back meanwhile): read on.
        if (code !== 406 || attempt >= 10) throw error;
        channel = await openChannel(connection);
      }
    }
    await channel.close();
    port.postMessage({ type: "done", read, deleted: false, missing: false });
  } finally {
    await connection.close().catch(() => {});
  }
}

await run();
