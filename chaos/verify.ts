/**
 * Checks a drained chaos run against its ledger: every valid message's effect
 * exactly once, every invalid one dead-lettered with a reason, nothing stuck,
 * no overlapping syncs of one repository, healthy clones.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { Queues } from "../src/contract/queues.ts";
import { distinctEntries, type Ledger, type LedgerEntry } from "./ledger.ts";

const run = promisify(execFile);

export interface Verdict {
  /** Valid messages whose effect is missing (or invalid ones not dead-lettered). */
  lost: Array<{ seq: number; kind: string; why: string }>;
  /** Rows beyond what the ledger allows. */
  duplicatedRows: number;
  deadLettered: number;
  /** tc-bad-elmo runs refused by the worker's schema (job failed with the reason, no Build). */
  refusedByWorker: number;
  /** Jobs still waiting, active or delayed after the drain, by queue, and some of them named. */
  stuck: Record<string, number>;
  stuckJobs: string[];
  /** Pairs of finished SyncRuns of one repository whose intervals overlap. */
  overlappingSyncs: number;
  /** SyncRuns never finished (their worker was SIGKILLed), and all SyncRuns. */
  abandonedSyncs: number;
  syncRuns: number;
  clones: { checked: number; unhealthy: string[] };
  /** Jobs that needed more than one attempt (faults at work). */
  retriedJobs: number;
}

export async function verifyLedger(options: { ledger: Ledger; queues: Queues; databaseUrl: string; clonesDir: string }): Promise<Verdict> {
  const { ledger, queues } = options;
  const verdict: Verdict = {
    lost: [],
    duplicatedRows: 0,
    deadLettered: 0,
    refusedByWorker: 0,
    stuck: {},
    stuckJobs: [],
    overlappingSyncs: 0,
    abandonedSyncs: 0,
    syncRuns: 0,
    clones: { checked: 0, unhealthy: [] },
    retriedJobs: 0,
  };
  const db = new pg.Client({ connectionString: options.databaseUrl });
  await db.connect();
  try {
    const builds = new Map<string, { count: number; hasElmoJson: boolean; comparisons: number }>();
    const { rows } = await db.query<{ taskId: string; hasElmoJson: boolean; comparisons: string }>(
      `SELECT b."taskId", b."hasElmoJson", count(c.id) AS comparisons FROM "Build" b LEFT JOIN "Comparison" c ON c."buildId" = b.id GROUP BY b.id`,
    );
    for (const row of rows) {
      const seen = builds.get(row.taskId);
      if (seen) seen.count++;
      else builds.set(row.taskId, { count: 1, hasElmoJson: row.hasElmoJson, comparisons: Number(row.comparisons) });
    }
    const ledgerTasks = new Set<string>();
    const lose = (entry: LedgerEntry, why: string) => verdict.lost.push({ seq: entry.seq, kind: entry.kind, why });

    for (const entry of distinctEntries(ledger)) {
      switch (entry.kind) {
        case "tc-run":
        case "tc-no-elmo": {
          ledgerTasks.add(entry.taskId!);
          const build = builds.get(entry.taskId!);
          const comparisons = entry.kind === "tc-run" ? ledger.comparisonsPerBuild : 0;
          if (!build) {
            const job = await queues["tc-ingest"].getJob(entry.job.id);
            lose(entry, `no Build for task ${entry.taskId} (job ${job ? `${await job.getState()}: ${job.failedReason ?? ""}` : "missing"})`);
            break;
          }
          verdict.duplicatedRows += build.count - 1 + Math.max(0, build.comparisons - comparisons);
          if (build.comparisons < comparisons) lose(entry, `Build of ${entry.taskId} has ${build.comparisons} of ${comparisons} comparisons`);
          if (build.hasElmoJson !== (entry.kind === "tc-run")) lose(entry, `Build of ${entry.taskId} has hasElmoJson ${build.hasElmoJson}`);
          break;
        }
        case "tc-bad-elmo": {
          ledgerTasks.add(entry.taskId!);
          if (builds.has(entry.taskId!)) verdict.duplicatedRows++; // bad data stored
          const job = await queues["tc-ingest"].getJob(entry.job.id);
          const state = job ? await job.getState() : "missing";
          if (state === "failed" && /elmo\.json is invalid/.test(job!.failedReason ?? "")) verdict.refusedByWorker++;
          else lose(entry, `tc-ingest job ${entry.job.id} is ${state}, not failed with the schema's reason (${job?.failedReason ?? ""})`);
          break;
        }
        case "hg-push":
          // The effect is the repository's pushes (checked below): pokes of one
          // repository are deduplicated into one job, so a message has no job of its own.
          break;
        case "invalid": {
          const job = await queues["dead-letter"].getJob(entry.job.id);
          if (!job) lose(entry, `no dead letter ${entry.job.id}`);
          else if (!job.data.reason) lose(entry, `dead letter ${entry.job.id} has no reason`);
          else verdict.deadLettered++;
          break;
        }
        case "duplicate":
          break;
      }
    }
    for (const taskId of builds.keys()) if (!ledgerTasks.has(taskId)) verdict.duplicatedRows++;

    // Every push upstream stored exactly once, with its changeset, in every repository poked.
    const { rows: pushes } = await db.query<{ url: string; pushes: string; distinct_ids: string; max_id: number | null; changesets: string }>(
      `SELECT r.url, count(p.id) AS pushes, count(DISTINCT p."pushId") AS distinct_ids, max(p."pushId") AS max_id,
              (SELECT count(*) FROM "PushChangeset" pc JOIN "Push" p2 ON p2.id = pc."pushId" WHERE p2."repositoryId" = r.id) AS changesets
         FROM "Repository" r LEFT JOIN "Push" p ON p."repositoryId" = r.id GROUP BY r.id`,
    );
    for (const [repo, expected] of ledger.pushesExpected) {
      const row = pushes.find((r) => r.url === repo);
      const stored = Number(row?.distinct_ids ?? 0);
      verdict.duplicatedRows += Number(row?.pushes ?? 0) - stored + Math.max(0, Number(row?.changesets ?? 0) - expected);
      if (stored < expected || (row?.max_id ?? 0) !== expected) {
        verdict.lost.push({ seq: -1, kind: "hg-push", why: `${repo}: ${stored} of ${expected} pushes stored (highest ${row?.max_id ?? "none"})` });
      } else if (Number(row!.changesets) < expected) {
        verdict.lost.push({ seq: -1, kind: "hg-push", why: `${repo}: ${row!.changesets} of ${expected} push changesets stored` });
      }
    }

    // Exactly the jobs the ledger names, no more (ids make duplicates impossible; extra ids would be a bug).
    const distinctJobs = (queue: string) =>
      new Set(
        distinctEntries(ledger)
          .filter((e) => e.job.queue === queue)
          .map((e) => e.job.id),
      ).size;
    const deadLetterCount = await queues["dead-letter"].count();
    verdict.duplicatedRows += Math.max(0, deadLetterCount - distinctJobs("dead-letter"));

    for (const queue of ["tc-ingest", "hg-sync"] as const) {
      // The reconcile scheduler always keeps its next run delayed: not stuck.
      const jobs = (await queues[queue].getJobs(["active", "waiting", "prioritized", "waiting-children", "delayed"], 0, -1)).filter(
        (job) => job && !String(job.id).startsWith("repeat:"),
      );
      if (jobs.length) verdict.stuck[queue] = jobs.length;
      for (const job of jobs.slice(0, 10))
        verdict.stuckJobs.push(`${queue} ${job.id} (${await job.getState()}, attempts ${job.attemptsMade}, ${job.failedReason ?? "no failure"})`);
    }
    const finished = [
      ...(await queues["tc-ingest"].getJobs(["completed", "failed"], 0, -1)),
      ...(await queues["hg-sync"].getJobs(["completed", "failed"], 0, -1)),
    ];
    verdict.retriedJobs = finished.filter((job) => (job?.attemptsMade ?? 0) > 1).length;

    // A SyncRun without an end belongs to a SIGKILLed worker: its real end is
    // unknown (at the latest its lock's expiry), so it is counted apart.
    const overlaps = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM "SyncRun" a JOIN "SyncRun" b ON a."repositoryId" = b."repositoryId" AND a.id < b.id
        AND a."finishedAt" IS NOT NULL AND b."finishedAt" IS NOT NULL
        AND a."startedAt" < b."finishedAt" AND b."startedAt" < a."finishedAt"`,
    );
    verdict.overlappingSyncs = Number(overlaps.rows[0]!.n);
    const abandoned = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "SyncRun" WHERE "finishedAt" IS NULL`);
    verdict.abandonedSyncs = Number(abandoned.rows[0]!.n);
    const runs = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "SyncRun"`);
    verdict.syncRuns = Number(runs.rows[0]!.n);
  } finally {
    await db.end();
  }
  verdict.clones = await checkClones(options.clonesDir);
  return verdict;
}

/** `hg verify` / `git fsck` on every clone under CLONES_DIR (<host>/<name>). */
export async function checkClones(clonesDir: string): Promise<{ checked: number; unhealthy: string[] }> {
  const unhealthy: string[] = [];
  let checked = 0;
  for (const host of await readdir(clonesDir).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(clonesDir, host)).catch(() => [] as string[])) {
      const clone = path.join(clonesDir, host, name);
      const [tool, args] = existsSync(path.join(clone, ".hg"))
        ? (["hg", ["--noninteractive", "-R", clone, "verify", "-q"]] as const)
        : (["git", ["-C", clone, "fsck", "--no-progress"]] as const);
      checked++;
      await run(tool, [...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HGPLAIN: "1", HGRCPATH: "" } }).catch((error: Error) =>
        unhealthy.push(`${clone}: ${error.message.split("\n")[0]}`),
      );
    }
  }
  return { checked, unhealthy };
}
