#!/usr/bin/env node
/**
 * `pulse-bridge`: one executable, one command per role (README, "Commands").
 * Failures end with exit code 1 and a one-line reason on stderr.
 *
 * Load on demand: this file and src/cli/*.ts hold only the command table
 * (names, descriptions, options, argument parsers), which imports commander
 * and nothing heavy. Each action imports its role's modules (and the config
 * module) with `await import()` when it runs, so `--help` stays fast and a
 * process carries only its own libraries: the bridge never loads Prisma, pg,
 * express, Bull Board or taskcluster-client
 * (test/architecture/bridge-footprint.test.ts). Keep it so: a static import
 * of a role module here or in src/cli/ brings it into every command.
 */
// First: on an unsupported Node, stop here with what to install.
import "./cli/require-node.ts";
import { Command, CommanderError } from "commander";
import { registerBridge } from "./cli/bridge.ts";
import { createCliContext } from "./cli/context.ts";
import { registerDashboard } from "./cli/dashboard.ts";
import { registerDemo } from "./cli/demo.ts";
import { registerDoctor } from "./cli/doctor.ts";
import { registerIngest } from "./cli/ingest.ts";
import { registerMigrate } from "./cli/migrate.ts";
import { registerReplay } from "./cli/replay.ts";
import { registerStart } from "./cli/start.ts";
import { registerTrack } from "./cli/track.ts";
import { registerWebhook } from "./cli/webhook.ts";
import { registerWorker } from "./cli/worker.ts";

export function buildProgram(context = createCliContext()): Command {
  const program = new Command("pulse-bridge")
    .description("Consume Mozilla Pulse into durable BullMQ jobs; sync clones and ingest Taskcluster results into PostgreSQL")
    .showHelpAfterError()
    .exitOverride();
  registerMigrate(program, context);
  registerBridge(program, context);
  registerWorker(program, context);
  registerTrack(program, context);
  registerDashboard(program, context);
  registerWebhook(program, context);
  registerReplay(program, context);
  registerIngest(program, context);
  registerStart(program, context);
  registerDemo(program);
  registerDoctor(program, context);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
    // Commands resolve when their work is done (roles: after shutdown). Exit
    // now rather than wait for stray timers, e.g. the schema engine's.
    process.exit(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`pulse-bridge: ${message.split("\n")[0]}\n`);
    process.exit(1);
  }
}

await main();
