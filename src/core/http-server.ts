/**
 * Listening and closing for our HTTP roles (the dashboard, the webhook
 * receiver): one way to fail clearly when the port is taken, to report the
 * URL, and to close without waiting on keep-alive connections.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./log.ts";

export interface ListeningServer {
  /** Where to reach it from this machine (0.0.0.0 shown as 127.0.0.1). */
  url: string;
  port: number;
  server: Server;
  /** Idempotent: stops listening, ends connections, then releases what the role opened. */
  close(): Promise<void>;
}

export async function listen(
  server: Server,
  options: { role: string; host: string; port: number; log: Logger; lifecycle: Lifecycle; release: () => Promise<void> },
): Promise<ListeningServer> {
  const { role, host, port, log, lifecycle, release } = options;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    // e.g. EADDRINUSE: nothing is registered with the lifecycle yet, so release here.
    await release();
    throw new Error(`${role} cannot listen on ${host}:${port}: ${(error as Error).message}`);
  }
  server.on("error", (error) => log.error({ err: error.message }, `${role} server error`));
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const url = `http://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${bound}`;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (browsers, proxies) would hold close() open.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      await release();
    })();
    return closing;
  };
  lifecycle.defer(role, close);
  return { url, port: bound, server, close };
}
