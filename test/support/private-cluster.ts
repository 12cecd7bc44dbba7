/**
 * A private three-master Redis Cluster of the caller's own (no replicas), on
 * free ports of 127.0.0.1, each node persisting every write (AOF,
 * appendfsync always) and its cluster state (nodes.conf) in a folder of its
 * own. The machine's shared Redis is never touched.
 *
 * Lifecycle: startPrivateCluster() → (kill(port) → restart(port))* → close().
 * A killed node's slots are down until it is back (no replica can take
 * over); restart() starts it on the same ports and folder, so it reads its
 * nodes.conf and AOF, rejoins, and returns once every node says
 * cluster_state:ok again.
 *
 * The cluster bus port is given explicitly (`cluster-port`, Redis ≥ 7), a
 * second free port, instead of the default port + 10000, which may be taken
 * or beyond 65535.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { durableServerArgs } from "./private-redis.ts";
import { waitFor } from "./wait-for.ts";

const run = promisify(execFile);

export interface PrivateCluster {
  /** The REDIS_CLUSTER_NODES value: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  nodes: string;
  ports: number[];
  /** The node serving the slot of `key` (for a BullMQ prefix `{tag}`, pass any key with that tag). */
  ownerOf(key: string): Promise<number>;
  /** SIGKILLs the node on `port` (its slots are down until restart). */
  kill(port: number): Promise<void>;
  /** Starts killed nodes again from their nodes.conf and AOF; waits for cluster_state:ok on every node. */
  restart(...ports: number[]): Promise<void>;
  close(): Promise<void>;
}

export interface PrivateClusterOptions {
  /** cluster-node-timeout: how long before a silent node is marked failing (default 2000 ms). */
  nodeTimeoutMs?: number;
}

interface Node {
  port: number;
  busPort: number;
  dir: string;
  child?: ChildProcess;
}

async function ask<T>(port: number, command: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    return await command(client);
  } finally {
    client.disconnect();
  }
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

export async function startPrivateCluster(options: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const root = await mkdtemp(path.join(tmpdir(), "pb-cluster-"));
  const nodes: Node[] = [];
  const children: ChildProcess[] = [];

  const startNode = async (node: Node) => {
    const child = spawn(
      "redis-server",
      [
        ...durableServerArgs(node.port, node.dir),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        path.join(node.dir, "nodes.conf"),
        "--cluster-port",
        String(node.busPort),
        "--cluster-node-timeout",
        String(nodeTimeoutMs),
        "--cluster-announce-ip",
        "127.0.0.1",
      ],
      { stdio: "ignore" },
    );
    child.on("error", () => {});
    node.child = child;
    children.push(child);
    await waitFor(`cluster node on port ${node.port} to answer`, async () => (await ask(node.port, (c) => c.ping())) === "PONG", { timeoutMs: 20_000 });
  };
  const allOk = () =>
    waitFor(
      "cluster_state:ok on every node",
      async () => {
        for (const node of nodes) if (!/cluster_state:ok/.test((await ask(node.port, (c) => c.call("CLUSTER", "INFO"))) as string)) return false;
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  const close = async () => {
    await Promise.all(children.map(stopChild));
    await rm(root, { recursive: true, force: true });
  };

  try {
    const taken = new Set<number>();
    const distinctFreePort = async () => {
      for (;;) {
        const port = await freePort();
        if (!taken.has(port)) {
          taken.add(port);
          return port;
        }
      }
    };
    for (let i = 0; i < 3; i++) {
      const port = await distinctFreePort();
      const busPort = await distinctFreePort();
      const dir = path.join(root, `node-${port}`);
      await mkdir(dir);
      nodes.push({ port, busPort, dir });
    }
    await Promise.all(nodes.map(startNode));
    await run("redis-cli", ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"], {
      timeout: 60_000,
    });
    await allOk();
  } catch (error) {
    await close();
    throw error;
  }

  const nodeOn = (port: number) => {
    const node = nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node of this cluster on port ${port}`);
    return node;
  };
  return {
    nodes: nodes.map((n) => `127.0.0.1:${n.port}`).join(","),
    ports: nodes.map((n) => n.port),
    async ownerOf(key) {
      // Any node that answers knows the whole slot map (even while another is down).
      for (const node of nodes) {
        const owner = await ask(node.port, async (c) => {
          const slot = (await c.call("CLUSTER", "KEYSLOT", key)) as number;
          const slots = (await c.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
          return slots.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
        }).catch(() => undefined);
        if (owner !== undefined) return owner;
      }
      throw new Error(`no node of this cluster knows who serves ${key}`);
    },
    async kill(port) {
      await stopChild(nodeOn(port).child);
    },
    async restart(...ports) {
      const restarting = ports.map(nodeOn);
      for (const node of restarting) {
        if (node.child && node.child.exitCode === null && node.child.signalCode === null) throw new Error(`cluster node on port ${node.port} is running`);
      }
      await Promise.all(restarting.map(startNode));
      await allOk();
    },
    close,
  };
}
