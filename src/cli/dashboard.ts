import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export function registerDashboard(program: Command, context: CliContext): void {
  program
    .command("dashboard")
    .description("HTTP server: Bull Board at /queues, /healthz, /readyz, /metrics, /artifacts/:id and the JSON API (DASHBOARD_HOST:DASHBOARD_PORT)")
    .action(async () => {
      await runRole(await context.config(), "dashboard", async ({ config, log, lifecycle }) => {
        const [{ diffBackends }, { startDashboard }] = await Promise.all([import("../dashboard/extras.ts"), import("../dashboard/server.ts")]);
        await startDashboard({ config, log, lifecycle, backends: diffBackends() });
      });
    });
}
