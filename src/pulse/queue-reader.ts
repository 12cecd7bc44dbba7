/**
 * Reads a queue whose messages the normal consumer may not be able to decode:
 * amqplib decodes header tables recursively, and one nested a few thousand
 * levels deep overflows a default stack (the consumer's connection dies with
 * it). The reading happens in a worker thread with a large stack
 * (queue-reader-thread.ts); the main thread gets each message with its headers
 * made shallow (shallow-headers.ts) and decides, one message at a time,
 * whether it is acked.
 *
 * Used for the poison queue (`replay --poison`) and to drain the classic
 * queues of earlier versions (feed-consumer.ts), which have no delivery limit
 * and could hold such a message.
 */
import { Worker } from "node:worker_threads";
import type { ReaderThreadEvent, ReaderThreadInput, ReadMessage } from "./queue-reader-thread.ts";

export type { ReadMessage } from "./queue-reader-thread.ts";

/** The reader thread's stack. 4 MB decodes 9,000 levels; a header frame (frame_max 128 KiB) holds at most ~26,000. */
const READER_STACK_MB = 64;

export interface QueueReadOptions extends ReaderThreadInput {
  /** Called for each message, one at a time; resolves true to ack it, false to leave it in the queue. */
  onMessage?(message: ReadMessage & { content: Buffer }): Promise<boolean>;
}

export interface QueueReadResult {
  read: number;
  /** drain mode: the queue was empty and has been deleted. */
  deleted: boolean;
  /** The queue does not exist. */
  missing: boolean;
  /** move-head mode: the message moved (headers made shallow), if there was one. */
  moved?: ReadMessage;
}

export interface QueueReader {
  done: Promise<QueueReadResult>;
  /** Ends the thread; a message it holds unacked goes back to the queue. */
  stop(): Promise<void>;
}

export function readQueue(options: QueueReadOptions): QueueReader {
  const { onMessage, ...input } = options;
  // Source files run as .ts (tests, tsx), the build as .js.
  const file = new URL(import.meta.url.endsWith(".ts") ? "./queue-reader-thread.ts" : "./queue-reader-thread.js", import.meta.url);
  const worker = new Worker(file, { workerData: input satisfies ReaderThreadInput, resourceLimits: { stackSizeMb: READER_STACK_MB } });
  let stopped = false;
  const done = new Promise<QueueReadResult>((resolve, reject) => {
    let result: QueueReadResult | undefined;
    let moved: ReadMessage | undefined;
    worker.on("message", (event: ReaderThreadEvent) => {
      if (event.type === "done") {
        result = { read: event.read, deleted: event.deleted, missing: event.missing, ...(moved ? { moved } : {}) };
        return;
      }
      if (event.type === "moved") {
        moved = event.message;
        return;
      }
      const { content } = event.message;
      if (!onMessage) {
        reject(new Error("a queue reader got a message without an onMessage handler"));
        void worker.terminate();
        return;
      }
      onMessage({ ...event.message, content: Buffer.from(content.buffer, content.byteOffset, content.byteLength) }).then(
        (ack) => worker.postMessage({ type: "settle", ack }),
        (error: unknown) => {
          reject(error instanceof Error ? error : new Error(String(error)));
          void worker.terminate();
        },
      );
    });
    worker.on("error", reject);
    worker.on("exit", (code) => {
      if (result) resolve(result);
      else reject(new Error(stopped ? "queue reader stopped" : `queue reader thread exited with code ${code} before finishing`));
    });
  });
  done.catch(() => {}); // the caller may only stop() it
  return {
    done,
    async stop() {
      stopped = true;
      await worker.terminate();
    },
  };
}
