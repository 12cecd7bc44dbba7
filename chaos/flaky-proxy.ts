/**
 * An HTTP proxy in front of a stand-in upstream (the hg server) that can be
 * told to fail: answer 500 for a while, or hold every answer for a
 * while (longer than a client's patience, as an overloaded hg.mozilla.org
 * does). The stand-in itself stays untouched.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FlakyProxy {
  url: string;
  /**
   * Every request answers 500 for the next `ms`. Time-bounded, not
   * count-bounded: a count would outlive the outage, as each failure pushes
   * the job's next attempt further out (exponential backoff).
   */
  failFor(ms: number): void;
  /** Every request waits `ms` before being forwarded (0: none). */
  delayMs: number;
  /** Requests answered 500 / delayed so far. */
  readonly injected: { errors: number; delayed: number };
  close(): Promise<void>;
}

export async function startFlakyProxy(target: string): Promise<FlakyProxy> {
  const upstream = new URL(target);
  let failingUntil = 0;
  const injected = { errors: 0, delayed: 0 };
  const state = { delayMs: 0 };
  const server = http.createServer((req, res) => {
    req.on("error", () => {});
    res.on("error", () => {});
    if (Date.now() < failingUntil) {
      injected.errors++;
      res.writeHead(500, { "content-type": "text/plain" });
      return void res.end("injected failure\n");
    }
    const forward = () => {
      const request = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      request.on("error", () => res.destroy());
      req.pipe(request);
    };
    if (state.delayMs > 0) {
      injected.delayed++;
      setTimeout(forward, state.delayMs);
    } else {
      forward();
    }
  });
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    failFor: (ms) => {
      failingUntil = Date.now() + ms;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    injected,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
