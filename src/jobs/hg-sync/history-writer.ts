/**
 * Writes repository history (the Repository, Push, Changeset and File tables of
 * prisma/schema.prisma) with bulk statements.
 *
 * Every statement is idempotent, so a retried or concurrent sync converges:
 * - Changeset: `INSERT ... ON CONFLICT (revision) DO UPDATE ... WHERE
 *   placeholder` fills in tc-ingest's placeholders and leaves complete rows
 *   alone; only rows inserted or filled in here (RETURNING) get parents and
 *   files, in the same transaction, so a committed non-placeholder row is
 *   always complete. Rows are inserted in revision order so that two
 *   writers sharing history (forks) take row locks in the same order.
 * - memberships, parents, files, pushes: ON CONFLICT DO NOTHING.
 */
import { type Database, type Transaction, transaction } from "../../storage/prisma.ts";
import type { ChangesetRecord } from "../../vcs/backend.ts";

async function idsByRevision(tx: Transaction, revisions: string[]): Promise<Map<string, number>> {
  const rows = await tx.$queryRaw<Array<{ id: number; revision: string }>>`
    SELECT id, revision FROM "Changeset" WHERE revision = ANY(${revisions}::bpchar[])`;
  return new Map(rows.map((row) => [row.revision.trim(), row.id]));
}

/** Revisions (of those given) already stored complete and linked to the repository. */
export async function knownRevisions(db: Database, repositoryId: number, revisions: string[]): Promise<Set<string>> {
  if (revisions.length === 0) return new Set();
  const rows = await db.$queryRaw<Array<{ revision: string }>>`
    SELECT c.revision FROM "Changeset" c
    JOIN "RepositoryChangeset" rc ON rc."changesetId" = c.id AND rc."repositoryId" = ${repositoryId}
    WHERE c.revision = ANY(${revisions}::bpchar[]) AND NOT c.placeholder`;
  return new Set(rows.map((row) => row.revision.trim()));
}

/** Stores a batch of changesets (parents first across batches) and links them to the repository. */
export async function storeChangesets(db: Database, repositoryId: number, records: ChangesetRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  const sorted = [...records].sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
  return transaction(
    db,
    "store changesets",
    async (tx) => {
      const branchNames = [...new Set(sorted.map((r) => r.branch).filter((b): b is string => b !== null))];
      const branchIds = new Map<string, number>();
      if (branchNames.length) {
        await tx.$executeRaw`INSERT INTO "Branch" (name) SELECT unnest(${branchNames}::text[]) ON CONFLICT (name) DO NOTHING`;
        const rows = await tx.$queryRaw<Array<{ id: number; name: string }>>`SELECT id, name FROM "Branch" WHERE name = ANY(${branchNames}::text[])`;
        for (const row of rows) branchIds.set(row.name, row.id);
      }
      const written = await tx.$queryRaw<Array<{ id: number; revision: string }>>`
        INSERT INTO "Changeset" (revision, author, description, date, "branchId", placeholder)
        SELECT r, a, d, t, b, false FROM unnest(
          ${sorted.map((r) => r.revision)}::text[], ${sorted.map((r) => r.author)}::text[], ${sorted.map((r) => r.description)}::text[],
          ${sorted.map((r) => r.date)}::timestamp[], ${sorted.map((r) => (r.branch === null ? null : (branchIds.get(r.branch) ?? null)))}::int[]
        ) AS x(r, a, d, t, b)
        ON CONFLICT (revision) DO UPDATE SET author = EXCLUDED.author, description = EXCLUDED.description, date = EXCLUDED.date,
          "branchId" = EXCLUDED."branchId", placeholder = false
        WHERE "Changeset".placeholder
        RETURNING id, revision`;
      const fresh = new Set(written.map((row) => row.revision.trim()));

      // Parents outside this batch are normally stored already; if one is
      // not (a partial history), a placeholder keeps the link.
      const parentRevisions = [...new Set(sorted.flatMap((r) => r.parents))].sort();
      if (parentRevisions.length) {
        await tx.$executeRaw`INSERT INTO "Changeset" (revision, placeholder) SELECT unnest(${parentRevisions}::text[]), true ON CONFLICT (revision) DO NOTHING`;
      }
      const ids = await idsByRevision(tx, [...new Set([...sorted.map((r) => r.revision), ...parentRevisions])]);
      const freshRecords = sorted.filter((r) => fresh.has(r.revision));

      const parentRows = freshRecords.flatMap((r) => r.parents.map((p, position) => ({ child: ids.get(r.revision)!, position, parent: ids.get(p)! })));
      if (parentRows.length) {
        await tx.$executeRaw`
          INSERT INTO "ChangesetParent" ("childId", position, "parentId")
          SELECT * FROM unnest(${parentRows.map((p) => p.child)}::int[], ${parentRows.map((p) => p.position)}::int[], ${parentRows.map((p) => p.parent)}::int[])
          ON CONFLICT DO NOTHING`;
      }
      const paths = [...new Set(freshRecords.flatMap((r) => r.files.map((f) => f.path)))].sort();
      if (paths.length) {
        await tx.$executeRaw`INSERT INTO "File" (path) SELECT unnest(${paths}::text[]) ON CONFLICT (path) DO NOTHING`;
        const fileRows = await tx.$queryRaw<Array<{ id: number; path: string }>>`SELECT id, path FROM "File" WHERE path = ANY(${paths}::text[])`;
        const fileIds = new Map(fileRows.map((row) => [row.path, row.id]));
        // A path listed twice in one changeset (hg can report a file both
        // modified and removed across a merge) keeps its first action.
        const seen = new Set<string>();
        const fileLinks = freshRecords.flatMap((r) =>
          r.files.flatMap((f) => {
            const key = `${r.revision}\0${f.path}`;
            if (seen.has(key)) return [];
            seen.add(key);
            return [{ changeset: ids.get(r.revision)!, file: fileIds.get(f.path)!, action: f.action }];
          }),
        );
        await tx.$executeRaw`
          INSERT INTO "ChangesetFile" ("changesetId", "fileId", action)
          SELECT c, f, a::"FileAction" FROM unnest(${fileLinks.map((l) => l.changeset)}::int[], ${fileLinks.map((l) => l.file)}::int[], ${fileLinks.map((l) => l.action)}::text[]) AS x(c, f, a)
          ON CONFLICT DO NOTHING`;
      }
      const memberIds = sorted.map((r) => ids.get(r.revision)!);
      await tx.$executeRaw`
        INSERT INTO "RepositoryChangeset" ("repositoryId", "changesetId")
        SELECT ${repositoryId}, unnest(${memberIds}::int[]) ON CONFLICT DO NOTHING`;
      return fresh.size;
    },
    { timeout: 120_000 },
  );
}

/** Adds repository membership for changesets already stored complete (shared history). */
export async function linkChangesets(db: Database, repositoryId: number, revisions: string[]): Promise<void> {
  if (revisions.length === 0) return;
  await db.$executeRaw`
    INSERT INTO "RepositoryChangeset" ("repositoryId", "changesetId")
    SELECT ${repositoryId}, id FROM "Changeset" WHERE revision = ANY(${revisions}::bpchar[]) ON CONFLICT DO NOTHING`;
}

export interface PushRecord {
  pushId: number;
  user: string;
  pushedAt: Date;
  /** Revisions in push order (tip-most last); all stored already. */
  revisions: string[];
}

/**
 * Stores hg pushes (ids from the pushlog) and raises lastPushId, in one
 * transaction. Pushes already stored are left as they are. Returns how many were new.
 */
export async function storePushes(db: Database, repositoryId: number, pushes: PushRecord[]): Promise<number> {
  if (pushes.length === 0) return 0;
  return transaction(
    db,
    "store pushes",
    async (tx) => {
      const inserted = await tx.$queryRaw<Array<{ id: number; pushId: number }>>`
        INSERT INTO "Push" ("repositoryId", "pushId", "user", "pushedAt")
        SELECT ${repositoryId}, * FROM unnest(${pushes.map((p) => p.pushId)}::int[], ${pushes.map((p) => p.user)}::text[], ${pushes.map((p) => p.pushedAt)}::timestamp[])
        ON CONFLICT ("repositoryId", "pushId") DO NOTHING
        RETURNING id, "pushId"`;
      await linkPushChangesets(tx, inserted, pushes);
      const maxPushId = Math.max(...pushes.map((p) => p.pushId));
      await tx.$executeRaw`UPDATE "Repository" SET "lastPushId" = GREATEST("lastPushId", ${maxPushId}) WHERE id = ${repositoryId}`;
      return inserted.length;
    },
    { timeout: 60_000 },
  );
}

/** Push memberships are written this many at a time: a first push can list 100,000 changesets. */
const LINK_BATCH = 10_000;

async function linkPushChangesets(tx: Transaction, inserted: Array<{ id: number; pushId: number }>, pushes: PushRecord[]): Promise<void> {
  const byPushId = new Map(pushes.map((p) => [p.pushId, p]));
  let rows: Array<{ push: number; position: number; revision: string }> = [];
  const flush = async () => {
    const ids = await idsByRevision(tx, [...new Set(rows.map((row) => row.revision))]);
    const missing = rows.find((row) => !ids.has(row.revision));
    if (missing) throw new Error(`push changeset not stored before its push (push row ${missing.push})`);
    await tx.$executeRaw`
      INSERT INTO "PushChangeset" ("pushId", position, "changesetId")
      SELECT * FROM unnest(${rows.map((r) => r.push)}::int[], ${rows.map((r) => r.position)}::int[], ${rows.map((r) => ids.get(r.revision)!)}::int[])
      ON CONFLICT DO NOTHING`;
    rows = [];
  };
  for (const row of inserted) {
    const revisions = byPushId.get(row.pushId)!.revisions;
    for (let position = 0; position < revisions.length; position++) {
      rows.push({ push: row.id, position, revision: revisions[position]! });
      if (rows.length >= LINK_BATCH) await flush();
    }
  }
  if (rows.length) await flush();
}

/**
 * Stores one git push event as the next push of the repository (git has no
 * pushlog: ids count events in arrival order). A redelivered event id adds
 * nothing. Returns the push id, or undefined if the event was stored before.
 */
export async function storeGitPush(
  db: Database,
  repositoryId: number,
  push: { eventId: string; user: string; pushedAt: Date; revisions: string[]; source: "pulse" | "webhook" },
): Promise<number | undefined> {
  return transaction(db, "store git push", async (tx) => {
    // Row lock on the repository: push ids are handed out one at a time.
    const [repo] = await tx.$queryRaw<Array<{ lastPushId: number }>>`SELECT "lastPushId" FROM "Repository" WHERE id = ${repositoryId} FOR UPDATE`;
    const pushId = (repo?.lastPushId ?? 0) + 1;
    const inserted = await tx.$queryRaw<Array<{ id: number; pushId: number }>>`
      INSERT INTO "Push" ("repositoryId", "pushId", "user", "pushedAt", "eventId", "source")
      VALUES (${repositoryId}, ${pushId}, ${push.user}, ${push.pushedAt}, ${push.eventId}, ${push.source}::"PushSource")
      ON CONFLICT DO NOTHING RETURNING id, "pushId"`;
    if (inserted.length === 0) return undefined;
    await linkPushChangesets(tx, inserted, [{ pushId, user: push.user, pushedAt: push.pushedAt, revisions: push.revisions }]);
    await tx.$executeRaw`UPDATE "Repository" SET "lastPushId" = ${pushId} WHERE id = ${repositoryId}`;
    return pushId;
  });
}
