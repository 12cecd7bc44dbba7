import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { migrate } from "../src/storage/migrate.ts";
import { SERVICES } from "./support/test-environment.ts";

const run = promisify(execFile);
const name = `pbt_migrate_${randomBytes(4).toString("hex")}`;
const url = `${SERVICES.postgres}/${name}`;

async function query(sql: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await client.end();
});

describe("migrate", () => {
  it("creates the database, applies every migration, and records them like prisma migrate deploy", async () => {
    const applied = await migrate(url);
    expect(applied.length).toBeGreaterThan(0);
    const tables = (await query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).map((r) => r.tablename);
    for (const model of ["Forest", "Locale", "Repository", "Push", "Changeset", "File", "Branch", "Build", "Comparison", "JobRecord"]) {
      expect(tables).toContain(model);
    }
    const recorded = await query("SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name");
    expect(recorded.map((r) => r.migration_name)).toEqual(applied);
  });

  it("is idempotent through the CLI: a second run applies nothing and exits 0", async () => {
    const { stdout } = await run(process.execPath, ["dist/cli.js", "migrate"], {
      env: { ...process.env, DATABASE_URL: url },
      cwd: new URL("..", import.meta.url).pathname,
    });
    expect(stdout).toMatch(/is up to date/);
    const count = await query("SELECT count(*)::int AS n FROM _prisma_migrations");
    expect(count[0].n).toBe((await migrate(url)).length + count[0].n);
  });

  it("fails with a one-line reason naming the variable when DATABASE_URL is wrong", async () => {
    const attempt = run(process.execPath, ["dist/cli.js", "migrate"], {
      env: { ...process.env, DATABASE_URL: "mysql://root:topsecret@db/x" },
      cwd: new URL("..", import.meta.url).pathname,
    });
    await expect(attempt).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^pulse-bridge: DATABASE_URL: .*\n$/) });
    await expect(attempt).rejects.not.toMatchObject({ stderr: expect.stringContaining("topsecret") });
  });
});
