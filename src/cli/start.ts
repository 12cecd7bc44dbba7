/**
 * `pulse-bridge start`: every role in one process (src/start/all-roles.ts).
 */
import type { Command } from "commander";
import { startAllRoles } from "../start/all-roles.ts";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export function registerStart(program: Command, context: CliContext): void {
  program
    .command("start")
    .description("migrate, then run the bridge, every worker pool and the dashboard in one process (single machine)")
    .action(async () => {
      await runRole(context.config(), "start", async (role) => {
        await startAllRoles(role);
      });
    });
}
