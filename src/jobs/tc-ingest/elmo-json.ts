/**
 * The `elmo.json` artifact (elmo's docs/taskcluster.rst; example in
 * formats/compare-locales/elmo.json-artifact.proposal.verbatim-blocks.json):
 *
 *   { "version": "1.0", "compare-locales": "9.0.4", "repository"?: URL,
 *     "comparisons": [{ "locale", "config", "artifact",
 *                       "revisions": { <repository path>: <40-hex> },
 *                       "summary": { errors, warnings, missing, missing_w, report,
 *                                    obsolete, changed, changed_w, unchanged,
 *                                    unchanged_w, keys } }] }
 *
 * Whatever a task uploads is untrusted: counts must be plausible whole
 * numbers, and names end up in URLs and on dashboards, so paths may not climb
 * (`..`) or carry control characters. Unknown keys are ignored (the format
 * may grow); a missing or wrong known key is an error whose message names its
 * path, e.g. `comparisons[2].summary.missing`.
 */
import { z } from "zod";
import { SUMMARY_FIELDS, type SummaryField } from "../../storage/comparison-counts.ts";

/** compare-locales counts strings and words of a whole product; 10^9 is far beyond any real tree. */
const MAX_COUNT = 1_000_000_000;

/** The most ELMO_JSON_MAX_COMPARISONS may allow; the default is lower (config.ts). */
export const MAX_COMPARISONS = 100_000;
/** Without a configured limit. */
const DEFAULT_MAX_COMPARISONS = 5_000;

const count = z.number().int().min(0).max(MAX_COUNT);

// C0, DEL and C1 controls, plus the line/paragraph separators: nothing a name needs.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const cleanText = (maxLength: number) =>
  z
    .string()
    .min(1, "must not be empty")
    .max(maxLength, `must be at most ${maxLength} characters`)
    .refine((text) => !CONTROL_CHARACTERS.test(text), "must not contain control characters");

/** A relative path inside a repository or a task's artifacts: no `..`, no `\`, not absolute. */
const relativePath = cleanText(1024)
  .refine((path) => !path.split("/").includes(".."), "must not contain '..'")
  .refine((path) => !path.includes("\\"), "must not contain '\\'")
  .refine((path) => !path.startsWith("/"), "must be a relative path");

/** A revisions key: a repository path (`/l10n-central/de/`) or an absolute http(s) URL. */
const repositoryPath = cleanText(1024)
  .refine((path) => !decodeURIComponentSafe(path).split("/").includes(".."), "must not contain '..'")
  .refine((path) => !path.includes("\\"), "must not contain '\\'")
  .refine((path) => !/^[a-z][a-z0-9+.-]*:/i.test(path) || /^https?:\/\//i.test(path), "must be a path or an http(s) URL");

const httpUrl = cleanText(2048).refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "must be an http(s) URL");

/** BCP 47 as compare-locales sees it: `de`, `pt-BR`, `ja-JP-mac`, `ca-valencia`, `sr-Latn`. */
const locale = z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$/, "must be a BCP 47 locale code");

const revision = z
  .string()
  .regex(/^[0-9a-fA-F]{40}$/, "must be a full 40-hex revision")
  .transform((hash) => hash.toLowerCase());

const summary = z.object(Object.fromEntries(SUMMARY_FIELDS.map((field) => [field, count])) as Record<SummaryField, typeof count>);

const comparison = z.object({
  locale,
  config: relativePath,
  artifact: relativePath,
  revisions: z.record(repositoryPath, revision).refine((revisions) => Object.keys(revisions).length <= 64, "must name at most 64 repositories"),
  summary,
});

const elmoJsonSchema = z
  .object({
    version: z.string().regex(/^1\.\d+$/, 'must be "1.x" (this worker reads version 1 of the format)'),
    "compare-locales": cleanText(100),
    repository: httpUrl.optional(),
    comparisons: z.array(comparison).max(MAX_COMPARISONS, `must hold at most ${MAX_COMPARISONS} comparisons`),
  })
  .superRefine((elmo, ctx) => {
    // (locale, config) identifies a Comparison within its Build.
    const seen = new Map<string, number>();
    elmo.comparisons.forEach((entry, index) => {
      const key = `${entry.locale}\u0000${entry.config}`;
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["comparisons", index],
          message: `repeats locale ${entry.locale} with config ${entry.config} of comparisons[${first}]`,
        });
      } else {
        seen.set(key, index);
      }
    });
  });

export type ElmoJson = z.infer<typeof elmoJsonSchema>;
export type ElmoComparison = ElmoJson["comparisons"][number];

export type ElmoJsonParse = { ok: true; elmo: ElmoJson } | { ok: false; reason: string };

/**
 * Parses the artifact's text; on failure, a reason naming the first
 * offending paths (never quoting the text itself beyond a bounded key).
 * The number of comparisons is checked before the schema runs: validating
 * and storing them is what costs memory and time.
 */
export function parseElmoJson(text: string, limits: { maxComparisons?: number } = {}): ElmoJsonParse {
  const maxComparisons = limits.maxComparisons ?? DEFAULT_MAX_COMPARISONS;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text ("Unexpected token 'x', \"...\" is not valid JSON"): keep only where.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    return { ok: false, reason: `elmo.json is not JSON${position ? ` (at character ${position})` : ""}` };
  }
  const comparisons = (data as { comparisons?: unknown } | null)?.comparisons;
  if (Array.isArray(comparisons) && comparisons.length > maxComparisons) {
    return { ok: false, reason: `elmo.json holds ${comparisons.length} comparisons, more than ELMO_JSON_MAX_COMPARISONS (${maxComparisons}); refused` };
  }
  const result = elmoJsonSchema.safeParse(data);
  if (result.success) return { ok: true, elmo: result.data };
  const issues = result.error.issues;
  const shown = issues.slice(0, 3).map((issue) => `${formatPath(issue.path)}: ${issueMessage(issue)}`);
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : "";
  return { ok: false, reason: `elmo.json is invalid: ${shown.join("; ")}${more}` };
}

/** A bad record key is reported as "Invalid key in record" with the key's own issues inside. */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_key" && issue.issues[0]) return issue.issues[0].message;
  return issue.message;
}

/** `comparisons[2].summary.missing`, `comparisons[0].revisions["/x/../y"]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return "(top level)";
  return path
    .map((part, index) => {
      if (typeof part === "number") return `[${part}]`;
      // Keys come from the artifact: a bad one may be long; the path only needs to point at it.
      const full = String(part);
      const name = full.length > 100 ? `${full.slice(0, 100)}…` : full;
      if (/^[A-Za-z_$][\w$-]*$/.test(name)) return index === 0 ? name : `.${name}`;
      return `[${JSON.stringify(name)}]`;
    })
    .join("");
}

/** Percentage of strings translated: changed·100 / (changed + unchanged + missing); 0 for an empty tree. */
export function completion(counts: { changed: number; unchanged: number; missing: number }): number {
  const total = counts.changed + counts.unchanged + counts.missing;
  return total === 0 ? 0 : (counts.changed * 100) / total;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
