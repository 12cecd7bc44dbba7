/**
 * Applies `prisma/migrations` without network access.
 *
 * `prisma migrate deploy` needs a native schema-engine binary that Prisma
 * downloads on first use, which a machine without internet cannot do. The
 * same engine ships compiled to WebAssembly in `@prisma/schema-engine-wasm`;
 * we drive it through the pg driver adapter. It records applied migrations in
 * `_prisma_migrations`, exactly as `prisma migrate deploy` would, so both
 * tools can be mixed. Applying twice is a no-op.
 */
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";
import pg from "pg";

const projectRoot = fileURLToPath(new URL("../..", import.meta.url));
export const MIGRATIONS_DIR = path.join(projectRoot, "prisma", "migrations");
const SCHEMA_PATH = path.join(projectRoot, "prisma", "schema.prisma");

type SchemaEngine = {
  applyMigrations(input: unknown): Promise<{ appliedMigrationNames: string[] }>;
  diff(input: unknown): Promise<{ exitCode: number; stdout: string | null }>;
  free(): void;
};

let engineModule: Promise<{ SchemaEngine: { new: (options: unknown, log: (msg: string) => void, adapter: object) => Promise<SchemaEngine> } }> | undefined;

/**
 * The package's ESM entry imports its `.wasm` file directly, which Node
 * cannot do; instantiate the module by hand and hand it to the JS glue.
 */
function loadEngineModule() {
  engineModule ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve("@prisma/schema-engine-wasm/schema_engine_bg")), "schema_engine_bg.wasm");
    const bg = (await import("@prisma/schema-engine-wasm/schema_engine_bg")) as Record<string, unknown> & { __wbg_set_wasm(exports: unknown): void };
    // The WebAssembly global is not in the es2023 lib; Node always has it.
    const wasm = (
      globalThis as unknown as { WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }> } }
    ).WebAssembly;
    const { instance } = await wasm.instantiate(await readFile(wasmPath), { "./schema_engine_bg.js": bg });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return bg as unknown as { SchemaEngine: { new: (options: unknown, log: (msg: string) => void, adapter: object) => Promise<SchemaEngine> } };
  })();
  return engineModule;
}

async function withEngine<T>(databaseUrl: string, run: (engine: SchemaEngine, schema: string) => Promise<T>): Promise<T> {
  const { SchemaEngine } = await loadEngineModule();
  const schema = await readFile(SCHEMA_PATH, "utf8");
  // Our own pool, so that it can be ended: the engine does not close the
  // adapter's connections, which would keep the process alive until idle.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg(pool));
  const engine = await SchemaEngine.new({ datamodels: [[SCHEMA_PATH, schema]] }, () => {}, adapter);
  try {
    return await run(engine, schema);
  } finally {
    engine.free();
    await pool.end();
  }
}

async function readMigrations(dir: string) {
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    entries.map(async (name) => ({
      path: name,
      migrationFile: { path: "migration.sql", content: { tag: "ok", value: await readFile(path.join(dir, name, "migration.sql"), "utf8") } },
    })),
  );
}

/** Creates the database named in the URL if it does not exist (Prisma's migrate does the same). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((error: { code?: string }) => {
        if (error.code !== "42P04") throw error; // created concurrently by another process
      });
    }
  } finally {
    await client.end();
  }
}

export async function migrate(databaseUrl: string, migrationsDir = MIGRATIONS_DIR): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  const migrationDirectories = await readMigrations(migrationsDir);
  return withEngine(databaseUrl, async (engine) => {
    const result = await engine.applyMigrations({
      migrationsList: {
        baseDir: migrationsDir,
        lockfile: { path: "migration_lock.toml", content: await readFile(path.join(migrationsDir, "migration_lock.toml"), "utf8").catch(() => null) },
        shadowDbInitScript: "",
        migrationDirectories,
      },
      filters: { externalTables: [], externalEnums: [] },
    });
    return result.appliedMigrationNames;
  });
}

/**
 * SQL that takes a database built from `fromSchema` (a previous schema.prisma,
 * or nothing) to the current schema.prisma: the body of the next migration
 * (scripts/new-migration.ts). A datamodel-to-datamodel diff: introspecting a
 * live database through the pg adapter fails on Postgres' internal "char" type.
 */
export async function schemaDiffSql(databaseUrl: string, fromSchema: string | null): Promise<string> {
  return withEngine(databaseUrl, async (engine, schema) => {
    const result = await engine.diff({
      from: fromSchema === null ? { tag: "empty" } : { tag: "schemaDatamodel", files: [{ path: SCHEMA_PATH, content: fromSchema }] },
      to: { tag: "schemaDatamodel", files: [{ path: SCHEMA_PATH, content: schema }] },
      script: true,
      shadowDatabaseUrl: null,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    });
    return result.stdout ?? "";
  });
}
