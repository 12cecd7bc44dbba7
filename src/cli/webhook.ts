/**
 * `pulse-bridge webhook`: the GitHub webhook receiver (src/webhook/receiver.ts)
 * on its own port, apart from the dashboard, since GitHub must reach it. It
 * reads the database only to tell tracked repositories from others.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export function registerWebhook(program: Command, context: CliContext): void {
  program
    .command("webhook")
    .description(
      "receive GitHub push webhooks (signed with GITHUB_WEBHOOK_SECRET) at POST /github on WEBHOOK_HOST:WEBHOOK_PORT and enqueue their git sync jobs",
    )
    .action(async () => {
      await runRole(await context.config(), "webhook", async ({ config, log, lifecycle }) => {
        const [{ openDatabase }, { trackedGitRepository }, { startWebhookReceiver }] = await Promise.all([
          import("../storage/prisma.ts"),
          import("../jobs/hg-sync/tracked-git-repository.ts"),
          import("../webhook/receiver.ts"),
        ]);
        const db = openDatabase(config.database, { atMost: 4 });
        lifecycle.defer("database", () => db.$disconnect());
        await startWebhookReceiver({ config, log, lifecycle, isTracked: trackedGitRepository(db) });
      });
    });
}
