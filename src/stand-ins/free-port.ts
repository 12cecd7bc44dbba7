/**
 * A TCP port on 127.0.0.1 that nothing listens on at the moment of asking,
 * for a child process (`hg serve`, a private Redis) that must be told its
 * port instead of reporting the one it bound. Another process may take the
 * port before the child binds it; the callers are local test and demo
 * servers, where that race is rare enough to accept.
 */
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
