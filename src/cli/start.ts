/**
 * `pulse-bridge start`: every role in one process (src/start/all-roles.ts).
 */
import type { Command } from "commander";
import { requireTools } from "../core/prerequisites.ts";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export function registerStart(program: Command, context: CliContext): void {
  program
    .command("start")
    .description(
      "migrate, then run the bridge, every worker pool, the dashboard and (with GITHUB_WEBHOOK_SECRET) the webhook receiver in one process (single machine)",
    )
    .action(async () => {
      requireTools(["hg", "git"], "start (its hg-sync pool)");
      await runRole(await context.config(), "start", async (role) => {
        const { startAllRoles } = await import("../start/all-roles.ts");
        await startAllRoles(role);
      });
    });
}
