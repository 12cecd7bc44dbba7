/**
 * `npm run chaos [-- --messages N --rate R --seed S --redis-down-ms MS --runs K --no-build
 *   --redis single|sentinel|cluster --failovers K --cluster-kill owner|all
 *   --pgbouncer [--pgbouncer-pool N] --bridges N --hg-sync N --tc-ingest N
 *   --database-pool-size N --faults all|redis]`
 * (env: CHAOS_MESSAGES, CHAOS_RATE, CHAOS_SEED, CHAOS_RUNS). Builds dist/
 * first (the processes are the real CLI), runs the chaos harness K times and
 * prints each run's table. Exits non-zero when any run lost or duplicated
 * anything, left a job stuck, saw a process crash, did not resume after the
 * last fault, or went over its database connection budget.
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { formatResult, runChaos } from "./harness.ts";
import { ROOT } from "./processes.ts";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: process.env.CHAOS_MESSAGES ?? "5000" },
    rate: { type: "string", default: process.env.CHAOS_RATE ?? "200" },
    seed: { type: "string", default: process.env.CHAOS_SEED ?? "1" },
    "redis-down-ms": { type: "string", default: "10000" },
    "drain-timeout-ms": { type: "string", default: "600000" },
    runs: { type: "string", default: process.env.CHAOS_RUNS ?? "1" },
    redis: { type: "string", default: "single" },
    failovers: { type: "string", default: "3" },
    "cluster-kill": { type: "string", default: "owner" },
    pgbouncer: { type: "boolean", default: false },
    "pgbouncer-pool": { type: "string", default: "10" },
    bridges: { type: "string", default: "2" },
    "hg-sync": { type: "string", default: "3" },
    "tc-ingest": { type: "string", default: "2" },
    "database-pool-size": { type: "string", default: "10" },
    faults: { type: "string", default: "all" },
    "no-build": { type: "boolean", default: false },
  },
});

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a whole number of at least 1, not ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

function oneOf<T extends string>(name: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) {
    console.error(`--${name} must be one of ${choices.join(", ")}, not ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return text as T;
}

const messages = positive("messages", values.messages);
const rate = positive("rate", values.rate);
const seed = positive("seed", values.seed);
const runs = positive("runs", values.runs);
const redis = oneOf("redis", values.redis, ["single", "sentinel", "cluster"] as const);
const clusterKill = oneOf("cluster-kill", values["cluster-kill"], ["owner", "all"] as const);
const faults = oneOf("faults", values.faults, ["all", "redis"] as const);
const processes = {
  bridges: positive("bridges", values.bridges),
  hgSync: positive("hg-sync", values["hg-sync"]),
  tcIngest: positive("tc-ingest", values["tc-ingest"]),
};

if (!values["no-build"]) {
  const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) {
    console.error("chaos: npm run build failed");
    process.exit(2);
  }
}

let failed = 0;
for (let n = 1; n <= runs; n++) {
  const result = await runChaos({
    messages,
    rate,
    seed: seed + n - 1,
    redisDownMs: positive("redis-down-ms", values["redis-down-ms"]),
    drainTimeoutMs: positive("drain-timeout-ms", values["drain-timeout-ms"]),
    redis,
    failovers: positive("failovers", values.failovers),
    clusterKill,
    ...(values.pgbouncer ? { pgbouncer: { poolSize: positive("pgbouncer-pool", values["pgbouncer-pool"]) } } : {}),
    processes,
    databasePoolSize: positive("database-pool-size", values["database-pool-size"]),
    faults,
  });
  console.log(`\n## chaos run ${n}/${runs} (${result.id}, seed ${seed + n - 1})\n${formatResult(result)}`);
  if (!result.ok) failed++;
}
process.exit(failed ? 1 : 0);
