/**
 * A Redis of the caller's own, on a free port, that it may kill and start
 * again: the machine's shared Redis must never be stopped. No persistence: a
 * restart comes back empty, like a Redis that lost its data, unless
 * `dataDir` is given: then every write is fsynced to an append-only file
 * there (as a production Redis for BullMQ is configured) and a killed server
 * comes back with everything it acknowledged. Used by the bridge and
 * dashboard tests and by the chaos harness (chaos/).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { waitFor } from "./wait-for.ts";

export interface PrivateRedis {
  url: string;
  port: number;
  /** True while the server process runs. */
  readonly running: boolean;
  /** SIGKILLs the server (as a crash would) and waits for it to be gone. Safe to call twice. */
  kill(): Promise<void>;
  /** Starts it again on the same port and waits until it answers PING. */
  start(): Promise<void>;
}

/**
 * A data server's arguments as BullMQ's Redis runs in production: every key
 * kept (noeviction), every write fsynced to the append-only file in `dir`
 * before the reply, no RDB snapshots. Shared by the Sentinel and Cluster set-ups.
 */
export function durableServerArgs(port: number, dir: string): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--maxmemory-policy",
    "noeviction",
  ];
}

export interface PrivateRedisOptions {
  /** Keep data across kills: append-only file with fsync on every write, in this folder. */
  dataDir?: string;
  /** With dataDir: how often the append-only file is fsynced (default always). */
  appendfsync?: "always" | "everysec";
  /** A replica of the Redis on this local port (`--replicaof`). */
  replicaOf?: number;
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const persistence = options.dataDir
    ? ["--dir", options.dataDir, "--appendonly", "yes", "--appendfsync", options.appendfsync ?? "always"]
    : ["--appendonly", "no"];
  // A replica writes the master's snapshot to dump.rdb in its folder: keep it out of the working tree.
  const replication =
    options.replicaOf !== undefined
      ? ["--replicaof", "127.0.0.1", String(options.replicaOf), ...(options.dataDir ? [] : ["--dir", await mkdtemp(path.join(tmpdir(), "pb-replica-"))])]
      : [];
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    if (child && child.exitCode === null) return;
    const started = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, ...replication], { stdio: "ignore" });
    started.on("error", () => {});
    child = started;
    await waitFor(`redis-server on port ${port} to answer`, async () => {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on("error", () => {});
      try {
        await probe.connect();
        return (await probe.ping()) === "PONG";
      } finally {
        probe.disconnect();
      }
    });
  };
  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url,
    port,
    get running() {
      return child !== undefined && child.exitCode === null;
    },
    kill,
    start,
  };
}
