/**
 * The count columns of a Comparison and the compare-locales summary fields
 * they hold. elmo.json (and the read API, which answers in the same words)
 * spells them snake_case; the Comparison table camelCase. tc-ingest reads one
 * way, the dashboard the other: both go through this one table.
 */

/** Comparison column → elmo.json `summary` field. */
const COMPARISON_COUNT_FIELDS = {
  errors: "errors",
  warnings: "warnings",
  missing: "missing",
  missingW: "missing_w",
  report: "report",
  obsolete: "obsolete",
  changed: "changed",
  changedW: "changed_w",
  unchanged: "unchanged",
  unchangedW: "unchanged_w",
  keys: "keys",
} as const;

type ComparisonCountColumn = keyof typeof COMPARISON_COUNT_FIELDS;
export type SummaryField = (typeof COMPARISON_COUNT_FIELDS)[ComparisonCountColumn];

/** The counts as the Comparison table holds them. */
export type ComparisonCounts = Record<ComparisonCountColumn, number>;
/** The counts as elmo.json's `summary` (and `/api/comparisons`) spell them. */
type ComparisonSummary = Record<SummaryField, number>;

const ENTRIES = Object.entries(COMPARISON_COUNT_FIELDS) as Array<[ComparisonCountColumn, SummaryField]>;

/** The Comparison table's count columns, in the table's order. */
export const COUNT_COLUMNS: readonly ComparisonCountColumn[] = ENTRIES.map(([column]) => column);
/** elmo.json's summary fields, in the table's order. */
export const SUMMARY_FIELDS: readonly SummaryField[] = ENTRIES.map(([, field]) => field);

export function countsFromSummary(summary: ComparisonSummary): ComparisonCounts {
  return Object.fromEntries(ENTRIES.map(([column, field]) => [column, summary[field]])) as ComparisonCounts;
}

/** Reads the count columns of a Comparison row (other columns are ignored). */
export function summaryFromCounts(counts: ComparisonCounts): ComparisonSummary {
  return Object.fromEntries(ENTRIES.map(([column, field]) => [field, counts[column]])) as ComparisonSummary;
}
