import { describe, expect, it } from "vitest";
import { detailArtifact, findElmoJson } from "../../src/jobs/tc-ingest/artifact-names.ts";
import { completion, parseElmoJson } from "../../src/jobs/tc-ingest/elmo-json.ts";
import { repositoryOfSource, resolveRepositoryPath } from "../../src/jobs/tc-ingest/repository-urls.ts";
import { formatJson } from "../support/formats.ts";
import { hex40, realisticElmoJson } from "./fixtures.ts";

const valid = () => realisticElmoJson({ geckoStrings: hex40(), de: hex40(), fr: hex40() });

function reasonFor(mutate: (elmo: any) => void): string {
  const elmo: any = valid();
  mutate(elmo);
  const parsed = parseElmoJson(JSON.stringify(elmo));
  if (parsed.ok) throw new Error("expected a schema error");
  return parsed.reason;
}

describe("elmo.json schema", () => {
  it("accepts elmo's documented example once its placeholder hashes are real, and a realistic file", () => {
    const documented = formatJson("compare-locales/elmo.json-artifact.proposal.verbatim-blocks.json");
    for (const entry of documented.comparisons) for (const key of Object.keys(entry.revisions)) entry.revisions[key] = hex40();
    expect(parseElmoJson(JSON.stringify(documented))).toMatchObject({ ok: true, elmo: { version: "1.0", "compare-locales": "8.0.0" } });
    expect(parseElmoJson(JSON.stringify(valid()))).toMatchObject({ ok: true });
  });

  it("rejects the documented example as is: its revisions are the placeholder text '40chars'", () => {
    const documented = formatJson("compare-locales/elmo.json-artifact.proposal.verbatim-blocks.json");
    const parsed = parseElmoJson(JSON.stringify(documented));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toContain('comparisons[0].revisions["/l10n/gecko-strings/"]: must be a full 40-hex revision');
  });

  it.each([
    ["a negative count", (e: any) => (e.comparisons[1].summary.missing = -3), "comparisons[1].summary.missing"],
    ["a fractional count", (e: any) => (e.comparisons[0].summary.changed = 1.5), "comparisons[0].summary.changed"],
    ["an absurd count", (e: any) => (e.comparisons[2].summary.keys = 2e9), "comparisons[2].summary.keys"],
    ["a count as text", (e: any) => (e.comparisons[0].summary.errors = "0"), "comparisons[0].summary.errors"],
    ["a missing count", (e: any) => delete e.comparisons[3].summary.unchanged_w, "comparisons[3].summary.unchanged_w"],
    ["an artifact path climbing out", (e: any) => (e.comparisons[0].artifact = "../../secrets.json"), "comparisons[0].artifact: must not contain '..'"],
    ["an absolute artifact path", (e: any) => (e.comparisons[0].artifact = "/etc/passwd"), "comparisons[0].artifact: must be a relative path"],
    [
      "a config with a control character",
      (e: any) => (e.comparisons[1].config = "_configs/browser\u001b[31m.toml"),
      "comparisons[1].config: must not contain control characters",
    ],
    ["a revisions path climbing out", (e: any) => (e.comparisons[0].revisions["/l10n/../../x/"] = hex40()), 'comparisons[0].revisions["/l10n/../../x/"]'],
    [
      "a revisions key with another scheme",
      (e: any) => (e.comparisons[0].revisions["file:///etc/"] = hex40()),
      'comparisons[0].revisions["file:///etc/"]: must be a path or an http(s) URL',
    ],
    [
      "a short revision",
      (e: any) => (e.comparisons[0].revisions["/l10n-central/de/"] = "2f77bc4f354d"),
      'comparisons[0].revisions["/l10n-central/de/"]: must be a full 40-hex revision',
    ],
    ["a locale that is not a code", (e: any) => (e.comparisons[0].locale = "de<script>"), "comparisons[0].locale: must be a BCP 47 locale code"],
    ["a repository that is not http(s)", (e: any) => (e.repository = "javascript:alert(1)"), "repository: must be an http(s) URL"],
    ["an unknown version", (e: any) => (e.version = "2.0"), 'version: must be "1.x"'],
    ["no compare-locales version", (e: any) => delete e["compare-locales"], "compare-locales:"],
    ["comparisons that are not a list", (e: any) => (e.comparisons = {}), "comparisons:"],
    [
      "the same locale and config twice",
      (e: any) => e.comparisons.push({ ...e.comparisons[0] }),
      "comparisons[4]: repeats locale de with config _configs/browser.toml of comparisons[0]",
    ],
  ])("rejects %s, naming the path", (_what, mutate, expected) => {
    expect(reasonFor(mutate)).toContain(expected);
  });

  it("rejects text that is not JSON, and ignores keys it does not know", () => {
    expect(parseElmoJson("{not json")).toMatchObject({ ok: false, reason: expect.stringMatching(/^elmo.json is not JSON/) });
    const elmo: any = valid();
    elmo.generator = { name: "future field" };
    elmo.comparisons[0].summary.future_count = 4;
    expect(parseElmoJson(JSON.stringify(elmo)).ok).toBe(true);
  });

  it("computes completion as changed·100/(changed+unchanged+missing), 0 for an empty tree", () => {
    expect(completion({ changed: 13, unchanged: 1, missing: 0 })).toBeCloseTo(92.857, 3);
    expect(completion({ changed: 3, unchanged: 2, missing: 9 })).toBeCloseTo(21.429, 3);
    expect(completion({ changed: 0, unchanged: 0, missing: 0 })).toBe(0);
  });
});

describe("repository URLs", () => {
  it("derives the repository from the task's metadata.source", () => {
    expect(repositoryOfSource("https://hg.mozilla.org/l10n-central/de/file/2f77bc4f354d9ba67ea5270b2fc789f4b0521287/.taskcluster.yml")).toBe(
      "https://hg.mozilla.org/l10n-central/de",
    );
    expect(repositoryOfSource("https://github.com/mozilla-mobile/focus-android/tree/master/tools/taskcluster")).toBe(
      "https://github.com/mozilla-mobile/focus-android",
    );
    expect(repositoryOfSource("https://hg.mozilla.org/l10n/gecko-strings/")).toBe("https://hg.mozilla.org/l10n/gecko-strings");
    expect(repositoryOfSource("not a url")).toBeUndefined();
    expect(repositoryOfSource(undefined)).toBeUndefined();
  });

  it("resolves revisions paths against the repository URL", () => {
    const base = "https://hg.mozilla.org/l10n/gecko-strings/";
    expect(resolveRepositoryPath(base, "/l10n-central/ab-CD/")).toBe("https://hg.mozilla.org/l10n-central/ab-CD");
    expect(resolveRepositoryPath(base, "/l10n/gecko-strings/")).toBe("https://hg.mozilla.org/l10n/gecko-strings");
    expect(resolveRepositoryPath("https://hg.mozilla.org/l10n-central", "de")).toBe("https://hg.mozilla.org/l10n-central/de");
    expect(resolveRepositoryPath(base, "https://github.com/mozilla-l10n/firefox-l10n/")).toBe("https://github.com/mozilla-l10n/firefox-l10n");
    expect(resolveRepositoryPath(undefined, "/l10n-central/de/")).toBeUndefined();
  });
});

describe("artifact names", () => {
  const listed = (...names: string[]) => names.map((name) => ({ name, storageType: "s3", expires: undefined }));

  it("finds elmo.json with or without public/, or in the task's output directory; not error artifacts", () => {
    expect(findElmoJson(listed("public/logs/live.log", "elmo.json", "public/elmo.json"))?.name).toBe("elmo.json");
    expect(findElmoJson(listed("public/elmo.json", "public/a/elmo.json"))?.name).toBe("public/elmo.json");
    expect(findElmoJson(listed("public/a/b/elmo.json", "public/compare-locales/elmo.json"))?.name).toBe("public/compare-locales/elmo.json");
    expect(findElmoJson(listed("public/not-elmo.json", "public/logs/live.log"))).toBeUndefined();
    expect(findElmoJson([{ name: "public/elmo.json", storageType: "error", expires: undefined }])).toBeUndefined();
  });

  it("names detail artifacts relative to elmo.json's directory", () => {
    const byName = new Map(listed("public/compare-locales/compares/browser.de.json", "public/x.json").map((a) => [a.name, a]));
    expect(detailArtifact(byName, "public/compare-locales/elmo.json", "compares/browser.de.json").name).toBe("public/compare-locales/compares/browser.de.json");
    expect(detailArtifact(byName, "public/compare-locales/elmo.json", "public/x.json").name).toBe("public/x.json");
    expect(detailArtifact(byName, "elmo.json", "compares/fr.json").name).toBe("compares/fr.json");
  });
});
