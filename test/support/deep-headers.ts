/**
 * Publishes a message whose headers hold a table nested `depth` levels deep:
 * the hostile sender's message that overflows amqplib's recursive header
 * decoder on a default stack (about 63 KB of headers at 9,000 levels).
 * amqplib encodes recursively too, so the publishing runs in a worker thread
 * with a large stack.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { encodeBody, type PublishOptions } from "./pulse.ts";
import { SERVICES } from "./test-environment.ts";

export const POISON_DEPTH = 9_000;

const PUBLISH = `
const { workerData, parentPort } = require("node:worker_threads");
const amqp = require(workerData.amqplib);
(async () => {
  let deep = {};
  for (let i = 0; i < workerData.depth; i++) deep = { a: deep };
  const connection = await amqp.connect(workerData.url);
  const channel = await connection.createConfirmChannel();
  channel.publish(workerData.exchange, workerData.routingKey, Buffer.from(workerData.body), {
    persistent: true,
    contentType: "application/json",
    headers: { ...workerData.headers, deep },
  });
  await channel.waitForConfirms();
  await connection.close();
  parentPort.postMessage("published");
})().catch((error) => { throw error; });
`;

export async function publishDeepHeaders(
  exchange: string,
  routingKey: string,
  body: unknown,
  options: PublishOptions & { depth?: number } = {},
): Promise<void> {
  const worker = new Worker(PUBLISH, {
    eval: true,
    workerData: {
      amqplib: createRequire(import.meta.url).resolve("amqplib"),
      url: SERVICES.amqp,
      exchange,
      routingKey,
      body: encodeBody(body).toString("utf8"),
      headers: options.headers ?? {},
      depth: options.depth ?? POISON_DEPTH,
    },
    resourceLimits: { stackSizeMb: 64 },
  });
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
    worker.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`publisher thread exited with ${code}`))));
  });
  await worker.terminate();
}
