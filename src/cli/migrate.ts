import type { Command } from "commander";
import type { CliContext } from "./context.ts";

export function registerMigrate(program: Command, context: CliContext): void {
  program
    .command("migrate")
    .description("apply prisma/migrations to DATABASE_URL (offline, idempotent; creates the database if missing)")
    .action(async () => {
      const config = await context.config();
      const [{ migrate }, { redactUrl }] = await Promise.all([import("../storage/migrate.ts"), import("../core/config.ts")]);
      const applied = await migrate(config.database.url);
      const target = redactUrl(config.database.url);
      console.log(applied.length ? `applied ${applied.length} migration(s) to ${target}: ${applied.join(", ")}` : `${target} is up to date`);
    });
}
