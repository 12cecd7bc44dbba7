/**
 * Pushes found by polling. git has no pushlog: a repository followed only by
 * the reconcile (no Pulse event, no webhook) would get its commits stored but
 * never a Push, so a pushes view of it stays empty. When a reconcile of a
 * repository that already has history (a sync completed before) stores new
 * commits, they become one push per branch update: the commits new since the
 * last sync reachable from one branch tip, with our arrival-order id, the
 * time of detection, source `poll` and no user (a poll cannot know who
 * pushed). The first import of a repository stays history, not a push (the
 * first sync imports every branch, whichever job runs it); so do new commits
 * that reach down to a root commit (an unrelated history pushed whole).
 *
 * The other way round, an event for commits a poll already stored as a push
 * adds no second push for them (`revisionsInPushes`).
 */
import { type Database, transaction } from "../../storage/prisma.ts";

/** True once a sync of the repository has completed: what a reconcile then finds is new. */
export async function hasHistory(db: Database, repositoryId: number): Promise<boolean> {
  const repo = await db.repository.findUnique({ where: { id: repositoryId }, select: { lastSyncedAt: true } });
  return repo?.lastSyncedAt != null;
}

/**
 * Splits the new revisions into one push per branch tip. `order` lists every
 * revision reachable from the tips, oldest first; `fresh` maps each new one to
 * its parents. Tips are taken oldest first, so a branch built on another one
 * gets only the commits the other lacks. Each push lists its revisions oldest
 * first (tip-most last, as pushlog pushes do).
 */
export function pushesByBranchTip(tips: string[], order: string[], fresh: Map<string, string[]>): string[][] {
  const position = new Map<string, number>();
  order.forEach((revision, index) => {
    if (fresh.has(revision)) position.set(revision, index);
  });
  const claimed = new Set<string>();
  const pushes: string[][] = [];
  const newTips = [...new Set(tips)].filter((tip) => fresh.has(tip)).sort((a, b) => position.get(a)! - position.get(b)!);
  for (const tip of newTips) {
    if (claimed.has(tip)) continue;
    const revisions: string[] = [];
    const stack = [tip];
    while (stack.length) {
      const revision = stack.pop()!;
      if (claimed.has(revision) || !fresh.has(revision)) continue;
      claimed.add(revision);
      revisions.push(revision);
      stack.push(...fresh.get(revision)!);
    }
    pushes.push(revisions.sort((a, b) => position.get(a)! - position.get(b)!));
  }
  return pushes;
}

/**
 * Stores polled pushes as the repository's next pushes (ids handed out under
 * a row lock on the repository, as for events), in one transaction. Every
 * revision must be stored already. Returns the push ids.
 */
export async function storePollPushes(db: Database, repositoryId: number, pushes: string[][], detectedAt: Date): Promise<number[]> {
  const nonEmpty = pushes.filter((revisions) => revisions.length > 0);
  if (nonEmpty.length === 0) return [];
  return transaction(db, "store polled pushes", async (tx) => {
    const [repo] = await tx.$queryRaw<Array<{ lastPushId: number }>>`SELECT "lastPushId" FROM "Repository" WHERE id = ${repositoryId} FOR UPDATE`;
    const first = (repo?.lastPushId ?? 0) + 1;
    const pushIds = nonEmpty.map((_, index) => first + index);
    const inserted = await tx.$queryRaw<Array<{ id: number; pushId: number }>>`
      INSERT INTO "Push" ("repositoryId", "pushId", "user", "pushedAt", "source")
      SELECT ${repositoryId}, p, '', ${detectedAt}, 'poll'::"PushSource" FROM unnest(${pushIds}::int[]) AS x(p)
      RETURNING id, "pushId"`;
    const rowOf = new Map(inserted.map((row) => [row.pushId, row.id]));
    const links = nonEmpty.flatMap((revisions, index) => revisions.map((revision, position) => ({ push: rowOf.get(pushIds[index]!)!, position, revision })));
    const linked = await tx.$executeRaw`
      INSERT INTO "PushChangeset" ("pushId", position, "changesetId")
      SELECT x.p, x.n, c.id FROM unnest(${links.map((l) => l.push)}::int[], ${links.map((l) => l.position)}::int[], ${links.map((l) => l.revision)}::text[]) AS x(p, n, r)
      JOIN "Changeset" c ON c.revision = x.r::bpchar`;
    if (linked !== links.length) throw new Error(`polled push changesets not stored before their push (${linked} of ${links.length} linked)`);
    await tx.$executeRaw`UPDATE "Repository" SET "lastPushId" = ${pushIds.at(-1)!} WHERE id = ${repositoryId}`;
    return pushIds;
  });
}

/** Revisions (of those given) already part of a push of the repository. */
export async function revisionsInPushes(db: Database, repositoryId: number, revisions: string[]): Promise<Set<string>> {
  if (revisions.length === 0) return new Set();
  const rows = await db.$queryRaw<Array<{ revision: string }>>`
    SELECT DISTINCT c.revision FROM "Changeset" c
    JOIN "PushChangeset" pc ON pc."changesetId" = c.id
    JOIN "Push" p ON p.id = pc."pushId" AND p."repositoryId" = ${repositoryId}
    WHERE c.revision = ANY(${revisions}::bpchar[])`;
  return new Set(rows.map((row) => row.revision.trim()));
}
