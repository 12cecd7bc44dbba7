/**
 * `pulse-bridge doctor` against the real services, each check broken for
 * real: a Redis that evicts, exchanges nobody declared, a queue declared with
 * other arguments, a clones folder that cannot be one, a database without
 * migrations, an unreachable Taskcluster, no hg or git on PATH. Each broken
 * run must fail exactly the checks its break concerns, and the all-good run
 * (warnings included) must exit 0.
 */
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import amqp from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { pulseFeeds } from "../../src/core/config.ts";
import type { DoctorReport } from "../../src/doctor/run-doctor.ts";
import { feedQueueArguments, poisonQueueArguments } from "../../src/pulse/feed-topology.ts";
import { freePort } from "../../src/stand-ins/free-port.ts";
import { assertCliBuilt, CLI_PATH } from "../support/bridge-process.ts";
import { type PrivateRedis, startPrivateRedis } from "../support/private-redis.ts";
import { createTestEnvironment, SERVICES, type TestEnvironment } from "../support/test-environment.ts";

let env: TestEnvironment;
let base: Record<string, string>;
let taskcluster: http.Server;
let evicting: PrivateRedis | undefined;
const wrongQueueName = () => `t-${env.id}-wrong`;
const emptyDatabase = () => `pbt_${env.id.replace(/-/g, "_")}_empty`;

async function git(args: string[]) {
  await new Promise<void>((resolve, reject) => execFile("git", args, (error) => (error ? reject(error) : resolve())));
}
async function hg(args: string[]) {
  await new Promise<void>((resolve, reject) => execFile("hg", args, { env: { ...process.env, HGPLAIN: "1" } }, (error) => (error ? reject(error) : resolve())));
}

beforeAll(async () => {
  assertCliBuilt();
  env = await createTestEnvironment("doctor");
  // A Queue API that answers its ping, as Taskcluster's does.
  taskcluster = http.createServer((req, res) => {
    if (req.url === "/api/queue/v1/ping") res.writeHead(200, { "content-type": "application/json" }).end('{"alive":true}');
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => taskcluster.listen(0, "127.0.0.1", resolve));
  base = { ...env.env, PULSE_DECLARE_EXCHANGES: "false", TASKCLUSTER_ROOT_URL: `http://127.0.0.1:${(taskcluster.address() as AddressInfo).port}` };

  // What the publishers and the bridge would have declared.
  const connection = await amqp.connect(SERVICES.amqp);
  const channel = await connection.createChannel();
  for (const exchange of Object.values(env.config.pulse.exchanges)) await channel.assertExchange(exchange, "topic", { durable: true });
  for (const feed of pulseFeeds(env.config)) await channel.assertQueue(feed.queue, { durable: true, arguments: feedQueueArguments(feed, env.config) });
  await channel.assertQueue(pulseFeeds(env.config)[0]!.poisonQueue, { durable: true, arguments: poisonQueueArguments(env.config) });
  // A queue of another installation's name, declared classic and unbounded: not what the bridge declares.
  await channel.assertQueue(`queue/guest/${wrongQueueName()}/v2/hgpushes`, { durable: true });
  await connection.close();

  // Clones: one hg, one git (bare, as hg-sync keeps them), and a folder that is neither.
  const host = path.join(env.clonesDir, "127.0.0.1");
  await mkdir(path.join(host, "broken-0123456789"), { recursive: true });
  await hg(["init", path.join(host, "l10n--de-0123456789")]);
  await git(["init", "--bare", "--quiet", path.join(host, "o--r.git-0123456789")]);
});

afterAll(async () => {
  await evicting?.kill();
  await new Promise((resolve) => taskcluster?.close(resolve));
  if (env) {
    const connection = await amqp.connect(SERVICES.amqp);
    const channel = await connection.createChannel();
    await channel.deleteQueue(`queue/guest/${wrongQueueName()}/v2/hgpushes`).catch(() => {});
    await connection.close();
    const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${emptyDatabase()}" WITH (FORCE)`);
    await client.end();
    await env.cleanup();
  }
});

async function doctor(extra: Record<string, string> = {}): Promise<{ code: number; report: DoctorReport; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI_PATH, "doctor", "--json"], { env: { ...process.env, ...base, ...extra } }, (error, stdout, stderr) => {
      const code = error ? Number((error as { code?: unknown }).code) : 0;
      try {
        resolve({ code, report: JSON.parse(stdout) as DoctorReport, stdout });
      } catch {
        reject(new Error(`doctor printed no JSON (exit ${code}): ${stdout}${stderr}`));
      }
    });
  });
}

const failed = (report: DoctorReport) => report.checks.filter((c) => c.status === "fail").map((c) => c.check);
const find = (report: DoctorReport, name: string) => report.checks.find((c) => c.check === name);

describe("pulse-bridge doctor", () => {
  it("all good: exit 0, every check ok, warnings do not fail", async () => {
    const { code, report } = await doctor();
    expect(failed(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    for (const name of [
      "node",
      "hg",
      "git",
      "postgres",
      "migrations",
      "redis",
      "redis eviction",
      "redis durability",
      "rabbitmq pulse",
      "exchanges pulse",
      "queue hgpushes",
      "queue github",
      "queue taskcluster",
      "queue poison pulse",
      "clones dir",
      "taskcluster pulse",
    ]) {
      expect(find(report, name)?.status, name).toBe("ok");
    }
    // The shared Redis of this machine keeps nothing on disk: a warning, with what to do.
    expect(find(report, "redis persistence")).toMatchObject({ status: "warn", fix: expect.stringContaining("appendonly yes") });
    // The hg and git clones open; the folder that is neither is named.
    expect(find(report, "clones")).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(/^1 of 3 do not open: 127\.0\.0\.1\/broken-0123456789 \(neither an hg nor a git clone\)/),
    });
    expect(find(report, "queue hgpushes")?.detail).toContain(`0 ready of ${env.config.pulse.maxLength}`);
  });

  it("a Redis that evicts (allkeys-lru) fails the eviction check", async () => {
    evicting = await startPrivateRedis();
    const redis = new Redis(evicting.url);
    await redis.config("SET", "maxmemory-policy", "allkeys-lru");
    redis.disconnect();
    const { code, report } = await doctor({ REDIS_URL: evicting.url });
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["redis eviction"]);
    expect(find(report, "redis eviction")).toMatchObject({ detail: expect.stringContaining("allkeys-lru"), fix: expect.stringContaining("noeviction") });
  });

  it("a Redis that cannot give REDIS_DURABILITY fails as the bridge would refuse it, or warns when told to run anyway", async () => {
    // The machine's Redis keeps nothing on disk.
    const refused = await doctor({ REDIS_DURABILITY: "fsync" });
    expect(refused.code).toBe(1);
    expect(failed(refused.report)).toEqual(["redis durability"]);
    expect(find(refused.report, "redis durability")).toMatchObject({
      detail: expect.stringMatching(/^REDIS_DURABILITY=fsync is not given: it runs appendonly no, .*the bridge refuses to start$/),
      fix: expect.stringContaining("appendfsync always"),
      neededBy: ["bridge", "webhook", "replay"],
    });
    const replicas = await doctor({ REDIS_DURABILITY: "replicas:2", REDIS_DURABILITY_UNCHECKED: "true" });
    expect(replicas.code).toBe(0);
    expect(find(replicas.report, "redis durability")).toMatchObject({
      status: "warn",
      detail: expect.stringContaining("it has 0 replicas online (connected_slaves 0), fewer than 2; roles run anyway"),
    });
  });

  it("exchanges nobody declared fail the exchanges check", async () => {
    const { code, report } = await doctor({ PULSE_EXCHANGE_PREFIX: `nobody-${env.id}/` });
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["exchanges pulse"]);
    expect(find(report, "exchanges pulse")?.detail).toContain(`missing: nobody-${env.id}/exchange/hgpushes/v2`);
  });

  it("a queue declared with other arguments than the bridge's fails its queue check", async () => {
    const { code, report } = await doctor({ PULSE_QUEUE: wrongQueueName() });
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["queue hgpushes"]);
    expect(find(report, "queue hgpushes")?.detail).toContain("exists with other arguments than the bridge declares (x-queue-type=quorum");
    // The other queues of that name do not exist: the bridge would declare them.
    expect(find(report, "queue github")?.status).toBe("warn");
  });

  it("a queue near its x-max-length fails (Pulse deletes queues past their limit), a poison message warns", async () => {
    // Another installation's queues, bounded at 4 messages, holding 4 and 2.
    const extra = { PULSE_QUEUE: `t-${env.id}-full`, PULSE_MAX_LENGTH: "4" };
    const config = env.configWith(extra);
    const [hgpushes, github] = pulseFeeds(config);
    const connection = await amqp.connect(SERVICES.amqp);
    onTestFinished(async () => {
      const cleanup = await connection.createChannel();
      for (const feed of pulseFeeds(config)) await cleanup.deleteQueue(feed.queue).catch(() => {});
      await cleanup.deleteQueue(hgpushes!.poisonQueue).catch(() => {});
      await connection.close();
    });
    const channel = await connection.createConfirmChannel();
    for (const feed of pulseFeeds(config)) await channel.assertQueue(feed.queue, { durable: true, arguments: feedQueueArguments(feed, config) });
    await channel.assertQueue(hgpushes!.poisonQueue, { durable: true, arguments: poisonQueueArguments(config) });
    for (let i = 0; i < 4; i++) channel.sendToQueue(hgpushes!.queue, Buffer.from("{}"));
    for (let i = 0; i < 2; i++) channel.sendToQueue(github!.queue, Buffer.from("{}"));
    channel.sendToQueue(hgpushes!.poisonQueue, Buffer.from("{}"));
    await channel.waitForConfirms();
    const { code, report } = await doctor(extra);
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["queue hgpushes"]);
    expect(find(report, "queue hgpushes")?.detail).toMatch(/: 4 ready of 4, 0 consumer\(s\): nearly full/);
    expect(find(report, "queue github")).toMatchObject({ status: "warn", detail: expect.stringContaining("2 ready of 4") });
    expect(find(report, "queue poison pulse")).toMatchObject({ status: "warn", fix: "pulse-bridge replay --poison" });
  });

  it("a clones folder that cannot be written fails (a file where it should be, or a path under a file)", async () => {
    // Tests may run as root, which ignores permission bits: a file is in the way for everyone.
    const file = path.join(env.clonesDir, "..", `pb-doctor-file-${env.id}`);
    await writeFile(file, "not a folder\n");
    onTestFinished(() => rm(file, { force: true }));
    const onFile = await doctor({ CLONES_DIR: file });
    expect(onFile.code).toBe(1);
    expect(failed(onFile.report)).toEqual(["clones dir"]);
    expect(find(onFile.report, "clones dir")?.detail).toBe(`${file} is not a folder`);
    const underFile = await doctor({ CLONES_DIR: path.join(file, "clones") });
    expect(underFile.code).toBe(1);
    expect(failed(underFile.report)).toEqual(["clones dir"]);
    expect(find(underFile.report, "clones dir")?.detail).toBe(`${path.join(file, "clones")} cannot be created: ${file} is not a folder`);
  });

  it("a database without migrations fails the migrations check, and says to migrate", async () => {
    const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` });
    await client.connect();
    await client.query(`CREATE DATABASE "${emptyDatabase()}"`);
    await client.end();
    const { code, report } = await doctor({ DATABASE_URL: `${SERVICES.postgres}/${emptyDatabase()}` });
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["migrations"]);
    expect(find(report, "postgres")?.status).toBe("ok");
    expect(find(report, "migrations")).toMatchObject({
      detail: expect.stringMatching(/^no migration applied \(\d+ in prisma\/migrations\)$/),
      fix: "pulse-bridge migrate",
    });
  });

  it("an unreachable Taskcluster root URL fails its check", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { code, report } = await doctor({ TASKCLUSTER_ROOT_URL: closed });
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["taskcluster pulse"]);
    expect(find(report, "taskcluster pulse")?.detail).toMatch(new RegExp(`^${closed}/api/queue/v1/ping: .*ECONNREFUSED`));
  });

  it("no hg or git on PATH fails both, naming the Debian package", async () => {
    const { code, report } = await doctor({ PATH: "/nonexistent" });
    expect(code).toBe(1);
    expect(failed(report)).toEqual(["hg", "git"]);
    expect(find(report, "hg")?.fix).toBe("install it: apt-get install -y mercurial");
    expect(find(report, "git")?.fix).toBe("install it: apt-get install -y git");
  });

  it("prints one line per check with what to do, and a summary", async () => {
    const { stdout } = await new Promise<{ stdout: string }>((resolve) =>
      execFile(process.execPath, [CLI_PATH, "doctor"], { env: { ...process.env, ...base, PULSE_EXCHANGE_PREFIX: `nobody-${env.id}/` } }, (_error, out) =>
        resolve({ stdout: out }),
      ),
    );
    const lines = stdout.trim().split("\n");
    expect(lines.find((l) => l.startsWith("FAIL  exchanges pulse"))).toContain("→ check PULSE_EXCHANGE_PREFIX");
    expect(lines.at(-1)).toMatch(/^something a role needs is wrong: \d+ ok, \d+ warning\(s\), 1 failed$/);
  });
});
