/**
 * Which migrations of `prisma/migrations` a database has applied, read from
 * `_prisma_migrations` (the table `migrate` and `prisma migrate deploy` keep),
 * without applying anything: for `pulse-bridge doctor`.
 */
import { readdir } from "node:fs/promises";
import pg from "pg";
import { MIGRATIONS_DIR } from "./migrate.ts";

export interface MigrationStatus {
  /** False when the database named in the URL does not exist. */
  databaseExists: boolean;
  applied: string[];
  /** In prisma/migrations, not applied: `migrate` applies them. */
  pending: string[];
  /** Started but neither finished nor rolled back: a migration that failed halfway. */
  failed: string[];
  /** Applied but not in prisma/migrations: the database is newer than this version. */
  unknown: string[];
  /** `SELECT version()`, for the report. */
  serverVersion: string;
}

export async function migrationStatus(databaseUrl: string, options: { timeoutMs: number }, migrationsDir = MIGRATIONS_DIR): Promise<MigrationStatus> {
  const expected = (await readdir(migrationsDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: options.timeoutMs, query_timeout: options.timeoutMs });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    // 3D000: invalid_catalog_name, the database does not exist.
    if ((error as { code?: string }).code === "3D000")
      return { databaseExists: false, applied: [], pending: expected, failed: [], unknown: [], serverVersion: "" };
    throw error;
  }
  try {
    const serverVersion = String((await client.query("SHOW server_version")).rows[0]?.server_version ?? "");
    let rows: Array<{ migration_name: string; finished_at: Date | null; rolled_back_at: Date | null }> = [];
    try {
      rows = (await client.query("SELECT migration_name, finished_at, rolled_back_at FROM _prisma_migrations")).rows;
    } catch (error) {
      // 42P01: undefined_table, nothing was ever applied.
      if ((error as { code?: string }).code !== "42P01") throw error;
    }
    const applied = [...new Set(rows.filter((r) => r.finished_at !== null && r.rolled_back_at === null).map((r) => r.migration_name))].sort();
    const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null).map((r) => r.migration_name);
    return {
      databaseExists: true,
      applied,
      pending: expected.filter((name) => !applied.includes(name)),
      failed,
      unknown: applied.filter((name) => !expected.includes(name)),
      serverVersion,
    };
  } finally {
    await client.end().catch(() => {});
  }
}
