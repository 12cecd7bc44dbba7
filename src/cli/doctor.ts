import type { Command } from "commander";
import { positiveInteger } from "./argument-parsers.ts";
import type { CliContext } from "./context.ts";

export function registerDoctor(program: Command, context: CliContext): void {
  program
    .command("doctor")
    .description(
      "check everything the roles need (tools, PostgreSQL, Redis, RabbitMQ, clones, Taskcluster): one line per check; exits 1 when something is wrong",
    )
    .option("--json", "print the report as JSON")
    .option("--timeout <seconds>", "time one connection or request may take", positiveInteger, 5)
    .action(async (options: { json?: boolean; timeout: number }) => {
      const config = await context.config();
      const { runDoctor, formatReport } = await import("../doctor/run-doctor.ts");
      const report = await runDoctor(config, { timeoutMs: options.timeout * 1000 });
      console.log(options.json ? JSON.stringify(report) : formatReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
