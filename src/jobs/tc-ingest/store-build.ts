/**
 * Writes one ingested run: its Build, one Comparison per elmo.json entry and
 * their revisions, in ONE transaction (the job completes only once all of it
 * is committed).
 *
 * Idempotent: the Build is keyed by (rootUrl, taskId, runId) and a
 * Comparison by (build, locale, config), so a redelivery or a replay updates
 * the same rows. Comparison ids survive a re-ingest (dashboard links point
 * at them); a resolved artifact link is kept unless the artifact URL changed.
 *
 * Concurrency: many jobs name the same new locales and revisions at once.
 * Those rows are created with INSERT ... ON CONFLICT DO NOTHING and selected
 * afterwards, so the unique constraints never fail a job. A second inserter
 * of the same new key waits for the first transaction and then skips it;
 * rows are inserted in sorted order so two such transactions always take
 * their locks in the same order and cannot deadlock.
 */
import { COUNT_COLUMNS, type ComparisonCounts } from "../../storage/comparison-counts.ts";
import { type Database, Prisma, type Transaction, transaction } from "../../storage/prisma.ts";

export interface BuildRecord {
  rootUrl: string;
  taskId: string;
  runId: number;
  state: string;
  taskGroupId: string | null;
  resolvedAt: Date | null;
  source: string | null;
  repository: string | null;
  compareLocalesVersion: string | null;
  hasElmoJson: boolean;
}

export interface ComparisonRecord {
  locale: string;
  config: string;
  counts: ComparisonCounts;
  completion: number;
  artifactName: string;
  artifactUrl: string;
  artifactExpiresAt: Date | null;
  /** Distinct repository URLs, each with its 40-hex lower-case revision. */
  revisions: Array<{ repository: string; revision: string }>;
}

export interface StoredBuild {
  buildId: number;
  comparisonIds: number[];
  /** Changesets this run created as placeholders (the rest existed already). */
  placeholdersCreated: number;
}

/** Generous: a transaction waits for others creating the same placeholders. */
const TRANSACTION_OPTIONS = { maxWait: 15_000, timeout: 60_000 };

export function storeBuild(db: Database, build: BuildRecord, comparisons: ComparisonRecord[]): Promise<StoredBuild> {
  const locales = [...new Set(comparisons.map((c) => c.locale))].sort();
  const revisions = [...new Set(comparisons.flatMap((c) => c.revisions.map((r) => r.revision)))].sort();
  // Seven round trips with BEGIN and COMMIT: at a few ms each, the statement
  // count is most of an ingest's database time.
  return transaction(
    db,
    "store build",
    async (tx) => {
      const buildId = await upsertBuildAndLocales(tx, build, locales);
      const created = revisions.length
        ? await tx.$executeRaw`
      INSERT INTO "Changeset" ("revision", "placeholder")
      SELECT revision, true FROM unnest(${revisions}::text[]) AS revision ORDER BY revision
      ON CONFLICT ("revision") DO NOTHING`
        : 0;
      // A separate statement: rows another transaction inserted while ours
      // waited on ON CONFLICT are visible only to a later statement.
      const { localeIds, changesetIds } = await selectIds(tx, locales, revisions);
      const comparisonIds = await upsertComparisons(tx, buildId, comparisons, localeIds);
      await replaceRevisions(tx, buildId, comparisons, comparisonIds, changesetIds);
      return { buildId, comparisonIds, placeholdersCreated: created };
    },
    TRANSACTION_OPTIONS,
  );
}

/** The Build row, and the Locale rows its comparisons need (no Build row is contended: one statement). */
async function upsertBuildAndLocales(tx: Transaction, build: BuildRecord, locales: string[]): Promise<number> {
  const rows = await tx.$queryRaw<Array<{ id: number }>>`
    WITH new_locales AS (
      INSERT INTO "Locale" ("code")
      SELECT code FROM unnest(${locales}::text[]) AS code ORDER BY code
      ON CONFLICT ("code") DO NOTHING
    )
    INSERT INTO "Build" ("rootUrl", "taskId", "runId", "state", "taskGroupId", "resolvedAt", "source", "repository", "compareLocalesVersion", "hasElmoJson", "updatedAt")
    VALUES (${build.rootUrl}, ${build.taskId}, ${build.runId}, ${build.state}, ${build.taskGroupId}, ${isoOrNull(build.resolvedAt)}::timestamp(3),
            ${build.source}, ${build.repository}, ${build.compareLocalesVersion}, ${build.hasElmoJson}, now())
    ON CONFLICT ("rootUrl", "taskId", "runId") DO UPDATE SET
      "state" = EXCLUDED."state",
      "taskGroupId" = COALESCE(EXCLUDED."taskGroupId", "Build"."taskGroupId"),
      "resolvedAt" = COALESCE(EXCLUDED."resolvedAt", "Build"."resolvedAt"),
      "source" = EXCLUDED."source",
      "repository" = EXCLUDED."repository",
      "compareLocalesVersion" = EXCLUDED."compareLocalesVersion",
      "hasElmoJson" = EXCLUDED."hasElmoJson",
      "updatedAt" = now()
    RETURNING "id"`;
  return rows[0]!.id;
}

async function selectIds(
  tx: Transaction,
  locales: string[],
  revisions: string[],
): Promise<{ localeIds: Map<string, number>; changesetIds: Map<string, number> }> {
  const localeIds = new Map<string, number>();
  const changesetIds = new Map<string, number>();
  if (locales.length === 0 && revisions.length === 0) return { localeIds, changesetIds };
  const rows = await tx.$queryRaw<Array<{ kind: "locale" | "changeset"; id: number; key: string }>>`
    SELECT 'locale' AS "kind", "id", "code" AS "key" FROM "Locale" WHERE "code" = ANY(${locales}::text[])
    UNION ALL
    SELECT 'changeset', "id", "revision"::text FROM "Changeset" WHERE "revision" = ANY(${revisions}::text[])`;
  for (const row of rows) (row.kind === "locale" ? localeIds : changesetIds).set(row.key, row.id);
  return { localeIds, changesetIds };
}

async function upsertComparisons(tx: Transaction, buildId: number, comparisons: ComparisonRecord[], localeIds: Map<string, number>): Promise<number[]> {
  if (comparisons.length === 0) return [];
  const column = <T>(pick: (c: ComparisonRecord) => T) => comparisons.map(pick);
  // The count columns come from COUNT_COLUMNS (identifiers of ours, never input).
  const countNames = Prisma.raw(COUNT_COLUMNS.map((name) => `"${name}"`).join(", "));
  const countArrays = Prisma.join(COUNT_COLUMNS.map((name) => Prisma.sql`${column((c) => c.counts[name])}::int[]`));
  const countUpdates = Prisma.raw(COUNT_COLUMNS.map((name) => `"${name}" = EXCLUDED."${name}"`).join(", "));
  const rows = await tx.$queryRaw<Array<{ id: number; localeId: number; config: string }>>`
    INSERT INTO "Comparison" ("buildId", "localeId", "config", ${countNames}, "completion", "artifactName", "artifactUrl", "artifactExpiresAt")
    SELECT ${buildId}::int, * FROM unnest(
      ${column((c) => localeIds.get(c.locale)!)}::int[], ${column((c) => c.config)}::text[],
      ${countArrays},
      ${column((c) => c.completion)}::float8[], ${column((c) => c.artifactName)}::text[], ${column((c) => c.artifactUrl)}::text[],
      ${column((c) => isoOrNull(c.artifactExpiresAt))}::timestamp(3)[])
    ON CONFLICT ("buildId", "localeId", "config") DO UPDATE SET
      ${countUpdates},
      "completion" = EXCLUDED."completion", "artifactName" = EXCLUDED."artifactName",
      "artifactExpiresAt" = EXCLUDED."artifactExpiresAt",
      -- a link resolved earlier stays valid only for the same artifact
      "resolvedUrl" = CASE WHEN "Comparison"."artifactUrl" = EXCLUDED."artifactUrl" THEN "Comparison"."resolvedUrl" END,
      "resolvedExpiresAt" = CASE WHEN "Comparison"."artifactUrl" = EXCLUDED."artifactUrl" THEN "Comparison"."resolvedExpiresAt" END,
      "artifactUrl" = EXCLUDED."artifactUrl"
    RETURNING "id", "localeId", "config"`;
  const idByKey = new Map(rows.map((row) => [`${row.localeId}\u0000${row.config}`, row.id]));
  return comparisons.map((c) => idByKey.get(`${localeIds.get(c.locale)}\u0000${c.config}`)!);
}

/**
 * Makes the build's comparisons and their revisions exactly the new ones, in
 * one statement: comparisons a re-ingested elmo.json dropped go (with their
 * revisions), revision links it dropped go, the others are upserted. The
 * three parts touch disjoint rows, so they can share one snapshot.
 */
async function replaceRevisions(
  tx: Transaction,
  buildId: number,
  comparisons: ComparisonRecord[],
  comparisonIds: number[],
  changesetIds: Map<string, number>,
): Promise<void> {
  const links = comparisons.flatMap((c, index) =>
    c.revisions.map((r) => ({ comparisonId: comparisonIds[index]!, repository: r.repository, changesetId: changesetIds.get(r.revision)! })),
  );
  const linkComparisons = links.map((l) => l.comparisonId);
  const linkRepositories = links.map((l) => l.repository);
  await tx.$executeRaw`
    WITH dropped_comparisons AS (
      DELETE FROM "Comparison" WHERE "buildId" = ${buildId} AND NOT ("id" = ANY(${comparisonIds}::int[]))
    ), dropped_links AS (
      DELETE FROM "ComparisonRevision" AS old
      WHERE old."comparisonId" = ANY(${comparisonIds}::int[])
        AND NOT EXISTS (
          SELECT 1 FROM unnest(${linkComparisons}::int[], ${linkRepositories}::text[]) AS kept("comparisonId", "repository")
          WHERE kept."comparisonId" = old."comparisonId" AND kept."repository" = old."repository")
    )
    INSERT INTO "ComparisonRevision" ("comparisonId", "repository", "changesetId")
    SELECT * FROM unnest(${linkComparisons}::int[], ${linkRepositories}::text[], ${links.map((l) => l.changesetId)}::int[])
    ON CONFLICT ("comparisonId", "repository") DO UPDATE SET "changesetId" = EXCLUDED."changesetId"`;
}

function isoOrNull(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}
