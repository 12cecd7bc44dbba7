// Runs `prisma generate` offline. Prisma 7 checks for a schema-engine binary
// it does not use for generation and tries to download one when it is absent;
// pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file skips that. This is
// set for generate only: with it, `prisma migrate` would silently do nothing
// (our migrations go through the WASM engine, see src/storage/migrate.ts).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const result = spawnSync(
  process.execPath,
  [fileURLToPath(new URL("../node_modules/prisma/build/index.js", import.meta.url)), "generate", "--schema", "prisma/schema.prisma"],
  {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: "1", CHECKPOINT_DISABLE: "1" },
  },
);
process.exit(result.status ?? 1);
