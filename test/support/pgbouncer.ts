/**
 * A private PgBouncer (Debian's `pgbouncer`, 1.18) in transaction mode on a
 * free port, in front of the machine's PostgreSQL, with its own ini and
 * userlist in a temp dir. Lifecycle: startPgBouncer() → url(db) / admin() → close().
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { waitFor } from "./wait-for.ts";

const BINARY = "/usr/sbin/pgbouncer";

export interface PgBouncer {
  port: number;
  poolSize: number;
  /** A DATABASE_URL that goes through the bouncer. */
  url(database: string, applicationName?: string): string;
  /** One query on the admin console (simple protocol only, as PgBouncer requires). */
  admin(command: string): Promise<Record<string, unknown>[]>;
  log(): Promise<string>;
  close(): Promise<void>;
}

export async function startPgBouncer(options: { poolSize: number }): Promise<PgBouncer> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: apt-get install -y pgbouncer (scripts/setup.sh does)`);
  const dir = await mkdtemp(path.join(tmpdir(), "pb-pgbouncer-"));
  const port = await freePort();
  // PgBouncer refuses to run as root; as root it switches to `user` after start.
  const asRoot = process.getuid?.() === 0;
  const ini = [
    "[databases]",
    "* = host=127.0.0.1 port=5432",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    "unix_socket_dir =",
    "auth_type = trust",
    `auth_file = ${dir}/userlist.txt`,
    "admin_users = postgres",
    "pool_mode = transaction",
    `default_pool_size = ${options.poolSize}`,
    "max_client_conn = 500",
    `logfile = ${dir}/pgbouncer.log`,
    ...(asRoot ? ["user = postgres"] : []),
  ].join("\n");
  await writeFile(path.join(dir, "pgbouncer.ini"), `${ini}\n`);
  await writeFile(path.join(dir, "userlist.txt"), '"postgres" ""\n');
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    for (const file of ["", "pgbouncer.ini", "userlist.txt"]) await chown(path.join(dir, file), uid, gid);
  }
  const child: ChildProcess = spawn(BINARY, [path.join(dir, "pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));

  const admin = async (command: string) => {
    const client = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${port}/pgbouncer` });
    await client.connect();
    try {
      return (await client.query(command)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  const log = () => readFile(path.join(dir, "pgbouncer.log"), "utf8").catch(() => stderr);
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("pgbouncer to accept connections", async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${stderr}${await log()}`);
      return (await admin("SHOW VERSION")).length > 0;
    });
  } catch (error) {
    await close();
    throw error;
  }
  return {
    port,
    poolSize: options.poolSize,
    url: (database, applicationName) =>
      `postgresql://postgres@127.0.0.1:${port}/${database}${applicationName ? `?application_name=${encodeURIComponent(applicationName)}` : ""}`,
    admin,
    log,
    close,
  };
}
