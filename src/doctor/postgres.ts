/** PostgreSQL reachable, and every migration of prisma/migrations applied. */

import type { Config } from "../core/config.ts";
import { redactUrl } from "../core/config.ts";
import { migrationStatus } from "../storage/migration-status.ts";
import { type CheckResult, reason, result } from "./check.ts";

const NEEDED_BY = ["worker hg-sync", "worker tc-ingest", "dashboard", "webhook", "track"];

function list(names: string[]): string {
  return names.length > 3 ? `${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : names.join(", ");
}

export async function checkPostgres(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const target = redactUrl(config.database.url);
  let status: Awaited<ReturnType<typeof migrationStatus>>;
  try {
    status = await migrationStatus(config.database.url, { timeoutMs });
  } catch (error) {
    return [
      result("postgres", NEEDED_BY, "fail", `${target}: ${reason(error)}`, "start PostgreSQL or correct DATABASE_URL"),
      result("migrations", NEEDED_BY, "skip", "not checked: PostgreSQL did not answer"),
    ];
  }
  if (!status.databaseExists) {
    return [
      result("postgres", NEEDED_BY, "fail", `${target}: the database does not exist`, "pulse-bridge migrate (creates it and applies the migrations)"),
      result("migrations", NEEDED_BY, "skip", "not checked: no database"),
    ];
  }
  const reachable = result("postgres", NEEDED_BY, "ok", `${target} (PostgreSQL ${status.serverVersion})`);
  if (status.failed.length) {
    return [
      reachable,
      result(
        "migrations",
        NEEDED_BY,
        "fail",
        `failed halfway: ${list(status.failed)}`,
        "read the migration's error in _prisma_migrations.logs, repair the database by hand, mark the row rolled back, then pulse-bridge migrate",
      ),
    ];
  }
  if (status.pending.length) {
    const none = status.applied.length === 0;
    return [
      reachable,
      result(
        "migrations",
        NEEDED_BY,
        "fail",
        none ? `no migration applied (${status.pending.length} in prisma/migrations)` : `${status.pending.length} not applied: ${list(status.pending)}`,
        "pulse-bridge migrate",
      ),
    ];
  }
  if (status.unknown.length) {
    return [
      reachable,
      result(
        "migrations",
        NEEDED_BY,
        "warn",
        `applied, but the database also has ${list(status.unknown)}, which this version does not know`,
        "run the version of pulse-bridge that migrated it",
      ),
    ];
  }
  return [reachable, result("migrations", NEEDED_BY, "ok", `all ${status.applied.length} applied`)];
}
