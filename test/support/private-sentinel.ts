/**
 * A private Redis Sentinel setup of the caller's own: a master, a replica and
 * three sentinels (quorum 2), all redis-server processes on free ports of
 * 127.0.0.1, the data servers persisting every write (AOF, appendfsync
 * always) in a temp folder. The machine's shared Redis is never touched.
 *
 * Lifecycle: startPrivateSentinel() → (killMaster() → restart(killed))* → close().
 * killMaster() SIGKILLs whichever server is master now and returns once every
 * sentinel names the promoted replica; restart() brings a killed server back
 * as a replica of the current master (its AOF is replaced by the master's
 * data on the resync, as Sentinel would do to a returning old master) and
 * returns once the sentinels count it as a healthy replica again, so the next
 * failover has somewhere to go.
 *
 * Timings: down-after-milliseconds 1000 and failover-timeout 4000, so a
 * failover takes about 2–4 s here (a production setup uses 5–30 s).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { durableServerArgs } from "./private-redis.ts";
import { waitFor } from "./wait-for.ts";

export interface PrivateSentinel {
  /** The REDIS_SENTINELS value: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  sentinels: string;
  /** The REDIS_SENTINEL_MASTER value. */
  master: string;
  /** Ports of the two data servers. */
  dataPorts: number[];
  /** The master the sentinels name now (asks the first sentinel that answers). */
  currentMaster(): Promise<{ port: number }>;
  /** SIGKILLs the current master, waits until every sentinel names the promoted replica. */
  killMaster(): Promise<{ killed: number; promoted: number; failoverMs: number }>;
  /** Starts a killed data server again as a replica of the current master; waits until the sentinels see it healthy. */
  restart(port: number): Promise<void>;
  close(): Promise<void>;
}

export interface PrivateSentinelOptions {
  masterName?: string;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

interface Server {
  port: number;
  dir: string;
  child?: ChildProcess;
}

const probe = (port: number) => {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000 });
  client.on("error", () => {});
  return client;
};

async function ask<T>(port: number, command: (client: Redis) => Promise<T>): Promise<T> {
  const client = probe(port);
  try {
    await client.connect();
    return await command(client);
  } finally {
    client.disconnect();
  }
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exited;
}

export async function startPrivateSentinel(options: PrivateSentinelOptions = {}): Promise<PrivateSentinel> {
  const masterName = options.masterName ?? "mymaster";
  const downAfterMs = options.downAfterMs ?? 1_000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 4_000;
  const root = await mkdtemp(path.join(tmpdir(), "pb-sentinel-"));
  const data: Server[] = [];
  const sentinels: Server[] = [];
  const children: ChildProcess[] = [];

  const spawnServer = (server: Server, args: string[]) => {
    const child = spawn("redis-server", args, { stdio: "ignore" });
    child.on("error", () => {});
    server.child = child;
    children.push(child);
  };
  const answers = (port: number) =>
    waitFor(`redis-server on port ${port} to answer`, async () => (await ask(port, (c) => c.ping())) === "PONG", { timeoutMs: 20_000 });

  const startData = async (server: Server, replicaOf?: number) => {
    spawnServer(server, [
      ...durableServerArgs(server.port, server.dir),
      // Sentinels learn the replicas' addresses from the master's INFO: name the loopback one.
      "--replica-announce-ip",
      "127.0.0.1",
      ...(replicaOf !== undefined ? ["--replicaof", "127.0.0.1", String(replicaOf)] : []),
    ]);
    await answers(server.port);
  };

  const close = async () => {
    await Promise.all(children.map((child) => stopChild(child, "SIGKILL")));
    await rm(root, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const dir = path.join(root, `data-${port}`);
      await mkdir(dir);
      data.push({ port, dir });
    }
    await startData(data[0]!);
    await startData(data[1]!, data[0]!.port);
    await waitFor("the replica to be in sync", async () => /master_link_status:up/.test(await ask(data[1]!.port, (c) => c.info("replication"))));

    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = path.join(root, `sentinel-${port}`);
      await mkdir(dir);
      // Each sentinel rewrites its own file (known replicas, other sentinels, epochs).
      const conf = [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        "sentinel resolve-hostnames no",
        "sentinel announce-ip 127.0.0.1",
        `sentinel monitor ${masterName} 127.0.0.1 ${data[0]!.port} 2`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${masterName} 1`,
      ].join("\n");
      const file = path.join(dir, "sentinel.conf");
      await writeFile(file, `${conf}\n`);
      const server: Server = { port, dir };
      spawnServer(server, [file, "--sentinel"]);
      sentinels.push(server);
    }
    for (const sentinel of sentinels) await answers(sentinel.port);
    // Ready when every sentinel knows the replica and the two other sentinels
    // (they find each other through the master's hello channel, every 2 s).
    await waitFor(
      "the sentinels to know the replica and each other",
      async () => {
        for (const sentinel of sentinels) {
          const fields = await sentinelMaster(sentinel.port, masterName);
          if (fields.get("num-slaves") !== "1" || fields.get("num-other-sentinels") !== "2") return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (error) {
    await close();
    throw error;
  }

  const masterBySentinel = async (port: number): Promise<number> => {
    const [, masterPort] = (await ask(port, (c) => c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName))) as [string, string];
    return Number(masterPort);
  };
  const currentMaster = async (): Promise<{ port: number }> => {
    let lastError: unknown;
    for (const sentinel of sentinels) {
      try {
        return { port: await masterBySentinel(sentinel.port) };
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };
  const serverOn = (port: number) => {
    const server = data.find((s) => s.port === port);
    if (!server) throw new Error(`no data server of this sentinel setup on port ${port}`);
    return server;
  };

  return {
    sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
    master: masterName,
    dataPorts: data.map((s) => s.port),
    currentMaster,
    async killMaster() {
      const killed = (await currentMaster()).port;
      const started = Date.now();
      await stopChild(serverOn(killed).child, "SIGKILL");
      const promoted = await waitFor(
        `the sentinels to promote a replica in place of port ${killed}`,
        async () => {
          const named = await Promise.all(sentinels.map((s) => masterBySentinel(s.port)));
          if (named.some((port) => port !== named[0] || port === killed)) return false;
          const role = (await ask(named[0]!, (c) => c.call("ROLE"))) as [string];
          return role[0] === "master" ? named[0] : false;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      return { killed, promoted, failoverMs: Date.now() - started };
    },
    async restart(port) {
      const server = serverOn(port);
      if (server.child && server.child.exitCode === null && server.child.signalCode === null) throw new Error(`redis-server on port ${port} is running`);
      const master = (await currentMaster()).port;
      await startData(server, master);
      // Ready when the sentinels agree on a master and every sentinel sees the other data
      // server as its healthy replica. Usually that is `port` under `master`, but on a loaded
      // machine a master stalled past down-after-milliseconds (an fsync, say) can be failed
      // over again meanwhile, and then the roles are the other way round: just as good for
      // the next failover, which is what this wait is for.
      const seen = new Map<number, string>();
      const started = Date.now();
      let reset = false;
      await waitFor(
        `port ${port} back as a replica, seen healthy by every sentinel`,
        async () => {
          const named = await Promise.all(sentinels.map((s) => masterBySentinel(s.port)));
          if (named.some((p) => p !== named[0])) {
            seen.set(0, `sentinels name different masters: ${named.join(", ")}`);
            return false;
          }
          const current = named[0]!;
          const replica = data.find((d) => d.port !== current)!.port;
          const info = await ask(replica, (c) => c.info("replication"));
          if (!/master_link_status:up/.test(info) || !info.includes(`master_port:${current}`)) {
            seen.set(replica, `not yet linked to ${current}`);
            return false;
          }
          const stale: Server[] = [];
          for (const sentinel of sentinels) {
            const replicas = (await ask(sentinel.port, (c) => c.call("SENTINEL", "REPLICAS", masterName))) as string[][];
            const entry = replicas.map(pairs).find((fields) => fields.get("port") === String(replica));
            const state = entry ? `flags ${entry.get("flags")}, link ${entry.get("master-link-status")}, master ${entry.get("master-port")}` : "not listed";
            seen.set(sentinel.port, `${replica}: ${state}`);
            if (entry?.get("flags") !== "slave" || entry.get("master-link-status") !== "ok" || entry.get("master-port") !== String(current))
              stale.push(sentinel);
          }
          // A sentinel that keeps a stale view for long is told to rediscover the master's replicas and peers.
          if (stale.length && !reset && Date.now() - started > 20_000) {
            reset = true;
            for (const sentinel of stale) await ask(sentinel.port, (c) => c.call("SENTINEL", "RESET", masterName));
          }
          return stale.length === 0;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      ).catch((error: Error) => {
        throw new Error(`${error.message}; last seen: ${[...seen].map(([p, state]) => `${p || "sentinels"}: ${state}`).join("; ")}`);
      });
    },
    close,
  };
}

function pairs(flat: string[]): Map<string, string> {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  return fields;
}

async function sentinelMaster(port: number, name: string): Promise<Map<string, string>> {
  return pairs((await ask(port, (c) => c.call("SENTINEL", "MASTER", name))) as string[]);
}
