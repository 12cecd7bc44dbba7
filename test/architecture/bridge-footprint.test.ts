/**
 * A running bridge carries only its own libraries (load on demand, src/cli.ts):
 * the real `node dist/cli.js bridge` process, started with a preload that
 * records every module Node loads (node:module registerHooks, in-thread, so
 * `require` of CommonJS packages is seen too), consumes its queues and turns
 * a message into a job and another into a dead letter; then none of the
 * pools' or the dashboard's libraries may be in the list, and the bridge's
 * own modules must be (so a recorder that records nothing cannot pass).
 *
 * `--help` is held to the same: it loads commander and the command table only.
 *
 * The static scripts/check-layers.mjs rule `bridge-loads-no-heavy-library`
 * sees the bridge's folders; this test sees the process, the CLI included.
 * Its resident memory is printed, not asserted. BRIDGE_FOOTPRINT_CLI=<path to
 * another build's cli.js> runs it against that build (e.g. an older one).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { CLI_PATH, useBridgeProcessSetting } from "../support/bridge-process.ts";
import { taskCompletedMessage } from "../support/pulse.ts";
import { waitFor } from "../support/wait-for.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cli = process.env.BRIDGE_FOOTPRINT_CLI ?? CLI_PATH;

/** Packages a bridge must never load: the pools' (Prisma, pg, taskcluster-client, simple-git) and the dashboard's. */
const FORBIDDEN = [/^@prisma\//, /^prisma$/, /^pg(-.+)?$/, /^express$/, /^helmet$/, /^@bull-board\//, /^taskcluster-client$/, /^simple-git$/];

/** Appends the URL of every module loaded (main thread and worker threads) to $RECORD_MODULES_TO. */
const RECORDER = `
import { appendFileSync } from "node:fs";
import { registerHooks } from "node:module";
const file = process.env.RECORD_MODULES_TO;
registerHooks({
  load(url, context, nextLoad) {
    appendFileSync(file, url + "\\n");
    return nextLoad(url, context);
  },
});
`;

const scratch = mkdtempSync(path.join(tmpdir(), "bridge-footprint-"));
const recorder = path.join(scratch, "record-modules.mjs");
writeFileSync(recorder, RECORDER);

const t = useBridgeProcessSetting("bridge-footprint", { built: cli === CLI_PATH });

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The package a module URL belongs to (`@scope/name` or `name`), or undefined for our own files and Node's. */
function packageOf(url: string): string | undefined {
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return match?.[1];
}

function recorded(record: string): string[] {
  return [...new Set(readFileSync(record, "utf8").split("\n").filter(Boolean))];
}

function residentMegabytes(pid: number): string {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return (kb / 1024).toFixed(1);
}

it("a running bridge has not loaded Prisma, pg, express, helmet, Bull Board or taskcluster-client", async () => {
  const record = path.join(scratch, "bridge-modules.txt");
  writeFileSync(record, "");
  const child = spawn(process.execPath, ["--import", recorder, cli, "bridge"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...t.env.env, LOG_LEVEL: "info", RECORD_MODULES_TO: record },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  child.stdout.on("data", (chunk: Buffer) => (logs += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (logs += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    await waitFor("the bridge to consume its three queues", () => (logs.match(/consuming from Pulse/g)?.length ?? 0) >= 3);
    console.log(`bridge (${path.relative(root, cli) || cli}) consuming: ${residentMegabytes(child.pid!)} MB resident`);

    // One message becomes a job, one a dead letter: routing and enqueueing have run too.
    const message = taskCompletedMessage(1, t.env.config);
    await t.publisher.publish(message.exchange, message.routingKey, message.body, message.options);
    await t.publisher.publish(t.env.config.pulse.exchanges.hgpushes, "l10n-central/de", "not json");
    await waitFor(
      "a tc-ingest job and a dead letter",
      async () => (await t.queues["tc-ingest"].count()) === 1 && (await t.queues["dead-letter"].count()) === 1,
    );
    console.log(`bridge after two messages: ${residentMegabytes(child.pid!)} MB resident`);

    child.kill("SIGTERM");
    expect(await exited, logs).toBe(0);
  } finally {
    child.kill("SIGKILL");
  }

  const loaded = recorded(record);
  const packages = [...new Set(loaded.map(packageOf).filter((name): name is string => name !== undefined))].sort();
  console.log(`bridge loaded ${loaded.length} modules from ${packages.length} packages: ${packages.join(", ")}`);

  // The recorder saw the process: the bridge's own modules and libraries are there.
  const ours = loaded.filter((url) => url.startsWith("file:") && !url.includes("/node_modules/")).map((url) => fileURLToPath(url));
  for (const module of ["cli.js", "bridge/bridge.js", "bridge/feed-consumer.js", "routing/route-message.js", "contract/queues.js"]) {
    expect(
      ours.some((file) => file.endsWith(`${path.sep}${module}`)),
      `${module} loaded`,
    ).toBe(true);
  }
  expect(packages).toEqual(expect.arrayContaining(["amqplib", "bullmq", "ioredis"]));

  // And nothing of the pools or the dashboard.
  expect(packages.filter((name) => FORBIDDEN.some((pattern) => pattern.test(name)))).toEqual([]);
  // Traces are off (no OTEL_EXPORTER_OTLP_ENDPOINT): no OpenTelemetry SDK, exporter or BullMQ add-on
  // (src/core/tracing.ts). The API alone was loaded before traces existed: prom-client's process CPU metric requires it.
  expect(packages.filter((name) => (name.startsWith("@opentelemetry/") && name !== "@opentelemetry/api") || name === "bullmq-otel")).toEqual([]);
  // (jobs/pools.js is the pool table the CLI's --help lists; it imports the pools themselves on demand.)
  const build = path.dirname(cli);
  const foreign = ours
    .map((file) => path.relative(build, file))
    .filter((file) => /^(generated|storage|jobs|dashboard|vcs|http|start|demo|replay)[/\\]/.test(file) && file !== path.join("jobs", "pools.js"));
  expect(foreign).toEqual([]);
});

it("--help loads commander and the command table, no role", () => {
  const record = path.join(scratch, "help-modules.txt");
  writeFileSync(record, "");
  const help = spawnSync(process.execPath, ["--import", recorder, cli, "--help"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", RECORD_MODULES_TO: record },
    encoding: "utf8",
  });
  expect(help.status, help.stderr).toBe(0);
  expect(help.stdout).toContain("Usage: pulse-bridge");
  const loaded = recorded(record);
  console.log(`--help loaded ${loaded.length} modules`);
  expect(loaded.some((url) => url.endsWith("/cli.js"))).toBe(true);
  expect([...new Set(loaded.map(packageOf).filter(Boolean))]).toEqual(["commander"]);
});
