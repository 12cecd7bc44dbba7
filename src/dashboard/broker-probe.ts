/**
 * A small, lazily (re)opened AMQP connection per broker, used by /readyz
 * (is the broker reachable?) and /metrics (how deep are our Pulse queues?).
 *
 * Lifecycle: closed → connecting → open; any 'error' or 'close' of the
 * connection returns it to closed and the next probe reconnects. Passive
 * checks of a missing queue close their channel (404), so every probe runs on
 * a channel of its own.
 */
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";
import { redactText } from "./redact-secrets.ts";

export const PROBE_TIMEOUT_MS = 3_000;

export function withTimeout<T>(what: string, promise: Promise<T>, ms = PROBE_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class BrokerProbe {
  private connection: Promise<ChannelModel> | undefined;
  private closed = false;

  constructor(
    /** Broker URL with credentials: never put it into a message. */
    private readonly url: string,
  ) {}

  private connect(): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new Error("probe closed"));
    this.connection ??= (async () => {
      try {
        const connection = await withTimeout("broker", amqp.connect(this.url, { ...AMQP_SOCKET_OPTIONS, timeout: PROBE_TIMEOUT_MS }));
        const forget = () => {
          this.connection = undefined;
        };
        connection.on("error", forget);
        connection.on("close", forget);
        return connection;
      } catch (error) {
        this.connection = undefined;
        throw new Error(redactText((error as Error).message));
      }
    })();
    return this.connection;
  }

  /** Runs `use` on a fresh channel of the shared connection. */
  async withChannel<T>(use: (channel: Channel) => Promise<T>): Promise<T> {
    const connection = await this.connect();
    const channel = await withTimeout("broker channel", connection.createChannel());
    // A passive check of a missing queue closes the channel with an error event.
    channel.on("error", () => {});
    try {
      return await withTimeout("broker", use(channel));
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /** Resolves when the broker accepts a connection and a channel. */
  async ping(): Promise<void> {
    await this.withChannel(async () => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection) await connection.then((c) => c.close()).catch(() => {});
  }
}
