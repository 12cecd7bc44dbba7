/**
 * hg-sync benchmark (`npm run bench:hg-sync`), against the local services and
 * a local hg.mozilla.org stand-in (src/stand-ins/hg-server.ts):
 *
 * 1. a generated 10,000-changeset history (100 pushes of 100) synced from
 *    scratch by the real worker: clone + pushlog + storing; changesets/s.
 * 2. one small push (3 changesets) synced, against the raw floor in the
 *    same run: `hg pull` of an identical clone plus the pushlog request.
 *    Ratio of medians over several rounds; target ≤ 1.5.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { trackRepository } from "../src/jobs/hg-sync/tracking.ts";
import { startHgServer } from "../src/stand-ins/hg-server.ts";
import { clonePathFor } from "../src/vcs/clone-path.ts";
import { message, openQueue, startWorker } from "../test/hg-sync/harness.ts";
import { createTestEnvironment } from "../test/support/test-environment.ts";

const run = promisify(execFile);
const HG_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HGPLAIN: "1", HGRCPATH: "" };
const PUSHES = Number(process.env.BENCH_PUSHES ?? 100);
const PER_PUSH = Number(process.env.BENCH_PER_PUSH ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  const env = await createTestEnvironment("bench-hg-sync", { RECONCILE_INTERVAL: "1h", LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn" });
  const hg = await startHgServer();
  const worker = await startWorker(env.config, 2);
  const jobs = openQueue(env.config);
  const scratch = await mkdtemp(path.join(tmpdir(), "pb-bench-hg-"));
  try {
    const name = "bench/big";
    const url = await hg.createRepo(name);
    const generating = Date.now();
    for (let p = 0; p < PUSHES; p++) {
      await hg.push(
        name,
        Array.from({ length: PER_PUSH }, (_, i) => {
          const n = p * PER_PUSH + i;
          return {
            message: `change ${n}\n\nBug ${n} - a longer description line`,
            date: `${1_700_000_000 + n} 0`,
            files: { [`dir${n % 20}/file${n % 500}.ftl`]: `key${n} = value ${n}\n`, ...(n % 50 === 0 ? { [`new/f${n}.ftl`]: "x\n" } : {}) },
          };
        }),
      );
    }
    const total = PUSHES * PER_PUSH;
    console.log(`generated ${total} changesets in ${PUSHES} pushes (${((Date.now() - generating) / 1000).toFixed(1)} s)`);
    await trackRepository(env.db, env.config.clones.allowedHosts, url);

    let started = Date.now();
    const full = await jobs.finished(await jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [PUSHES], message: message(name) }), 600_000);
    if (full.failedReason) throw new Error(full.failedReason);
    const fullMs = (full.finishedOn ?? Date.now()) - (full.processedOn ?? started);
    const stored = await env.db.changeset.count();
    const syncRun = await env.db.syncRun.findFirstOrThrow({ where: { jobId: full.id! } });
    console.log(
      `from scratch: ${stored} changesets, ${PUSHES} pushes in ${(fullMs / 1000).toFixed(2)} s (clone included) = ${Math.round(stored / (fullMs / 1000))} changesets/s (target >= 2000)`,
    );
    void syncRun;

    // Small pushes: the worker's sync vs hg pull + pushlog request on a twin clone.
    const clone = clonePathFor(env.clonesDir, url);
    const twin = path.join(scratch, "twin");
    await cp(clone, twin, { recursive: true });
    const synced: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { pushId } = await hg.push(
        name,
        Array.from({ length: 3 }, (_, i) => ({ message: `small ${round}.${i}`, files: { [`small/${i}.ftl`]: `${round}\n` } })),
      );
      started = performance.now();
      await run("hg", ["pull", "-R", twin, "--", url], { env: HG_ENV });
      const answer = await fetch(`${url}/json-pushes?version=2&full=1&startID=${pushId - 1}&endID=${pushId}`);
      await answer.json();
      raw.push(performance.now() - started);

      const job = await jobs.finished(await jobs.add({ kind: "hg-push", repoUrl: url, heads: [], pushIds: [pushId], message: message(name) }));
      if (job.failedReason) throw new Error(job.failedReason);
      synced.push(job.finishedOn! - job.processedOn!);
    }
    const ratio = median(synced) / median(raw);
    console.log(
      `small push (3 changesets), median of ${ROUNDS}: synced ${median(synced).toFixed(0)} ms, raw hg pull + pushlog ${median(raw).toFixed(0)} ms, ratio ${ratio.toFixed(2)} (target <= 1.5)`,
    );
  } finally {
    await worker.stop();
    await jobs.close();
    await hg.close();
    await env.cleanup();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
