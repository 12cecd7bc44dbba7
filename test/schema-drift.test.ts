/**
 * prisma/migrations must build exactly the database schema.prisma describes:
 * a model changed without its migration would pass every other test (they
 * migrate) and fail in production. Compares a database built by the
 * migrations with one built from schema.prisma directly.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { ensureDatabase, migrate, schemaDiffSql } from "../src/storage/migrate.ts";
import { SERVICES } from "./support/test-environment.ts";

const suffix = randomBytes(4).toString("hex");
const fromMigrations = `pbt_drift_migrations_${suffix}`;
const fromSchema = `pbt_drift_schema_${suffix}`;

async function withClient<T>(database: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVICES.postgres}/${database}` });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function describeSchema(database: string) {
  return withClient(database, async (client) => {
    const columns = await client.query(
      `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
        ORDER BY table_name, column_name`,
    );
    const indexes = await client.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY indexdef`);
    const constraints = await client.query(
      `SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '_prisma_migrations' ORDER BY 1, 2`,
    );
    const enums = await client.query(`SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY 1, e.enumsortorder`);
    return { columns: columns.rows, indexes: indexes.rows, constraints: constraints.rows, enums: enums.rows };
  });
}

afterAll(async () => {
  await withClient("postgres", async (client) => {
    for (const name of [fromMigrations, fromSchema]) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
});

describe("migrations", () => {
  it("build exactly the schema that schema.prisma describes", async () => {
    await migrate(`${SERVICES.postgres}/${fromMigrations}`);
    await ensureDatabase(`${SERVICES.postgres}/${fromSchema}`);
    const sql = await schemaDiffSql(`${SERVICES.postgres}/${fromSchema}`, null);
    await withClient(fromSchema, (client) => client.query(sql));
    expect(await describeSchema(fromMigrations)).toEqual(await describeSchema(fromSchema));
  });
});
