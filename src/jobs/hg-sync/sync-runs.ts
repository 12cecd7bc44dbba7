/**
 * SyncRun rows: one per interval a worker held a repository's lock, with the
 * database's clock at both ends (all processes share it), so overlaps can be
 * checked from the table alone. Started right after acquiring, finished
 * right before releasing.
 */
import type { Database } from "../../storage/prisma.ts";

export async function startSyncRun(db: Database, repositoryId: number, jobId: string, worker: string): Promise<number> {
  // We hold the lock, so an earlier run of this repository still open belongs
  // to a worker that died holding it (its lock expired). Mark it: its end is
  // unknown (some time before our start), so finishedAt stays empty.
  await db.$executeRaw`
    UPDATE "SyncRun" SET outcome = 'abandoned: worker died while holding the lock'
     WHERE "repositoryId" = ${repositoryId} AND "finishedAt" IS NULL AND outcome IS NULL`;
  const [row] = await db.$queryRaw<Array<{ id: number }>>`
    INSERT INTO "SyncRun" ("repositoryId", "jobId", worker, "startedAt") VALUES (${repositoryId}, ${jobId}, ${worker}, clock_timestamp()) RETURNING id`;
  return row!.id;
}

export async function finishSyncRun(db: Database, id: number, outcome: string, pushesStored: number): Promise<void> {
  await db.$executeRaw`
    UPDATE "SyncRun" SET "finishedAt" = clock_timestamp(), outcome = ${outcome.slice(0, 500)}, "pushesStored" = ${pushesStored} WHERE id = ${id}`;
}
