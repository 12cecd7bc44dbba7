/**
 * `npm run chaos [-- --messages N --rate R --seed S --redis-down-ms MS --runs K --no-build]`
 * (env: CHAOS_MESSAGES, CHAOS_RATE, CHAOS_SEED, CHAOS_RUNS). Builds dist/
 * first (the processes are the real CLI), runs the chaos harness K times and
 * prints each run's table. Exits non-zero when any run lost or duplicated
 * anything, left a job stuck, or saw a process crash.
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

const messages = positive("messages", values.messages);
const rate = positive("rate", values.rate);
const seed = positive("seed", values.seed);
const runs = positive("runs", values.runs);

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
  });
  console.log(`\n## chaos run ${n}/${runs} (${result.id}, seed ${seed + n - 1})\n${formatResult(result)}`);
  if (!result.ok) failed++;
}
process.exit(failed ? 1 : 0);
