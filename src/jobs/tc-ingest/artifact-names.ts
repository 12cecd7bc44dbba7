/**
 * Which artifacts of a run matter to us. compare-locales tasks upload their
 * output directory under some prefix (`public/compare-locales/` in the
 * assembled Firefox-CI example), and elmo.json names its detail artifacts
 * relative to that directory (`compares/browser.de.json`).
 */
import type { ArtifactEntry } from "./queue-api.ts";

/**
 * `elmo.json`, else `public/elmo.json`, else the shallowest `<dir>/elmo.json`.
 * Error artifacts (the file was missing on the worker) do not count: such a
 * run has no elmo.json to read.
 */
export function findElmoJson(artifacts: ArtifactEntry[]): ArtifactEntry | undefined {
  const usable = artifacts.filter((artifact) => artifact.storageType !== "error");
  const exact = usable.find((a) => a.name === "elmo.json") ?? usable.find((a) => a.name === "public/elmo.json");
  if (exact) return exact;
  return usable
    .filter((a) => a.name.endsWith("/elmo.json"))
    .sort((a, b) => a.name.split("/").length - b.name.split("/").length || a.name.localeCompare(b.name))[0];
}

/**
 * The full artifact name of a comparison's detail artifact: the name as
 * given when the run has it, else relative to elmo.json's directory (also
 * when not listed: the link then answers 404 later, instead of failing the
 * whole ingest over one missing detail file).
 */
export function detailArtifact(
  artifactsByName: Map<string, ArtifactEntry>,
  elmoJsonName: string,
  artifact: string,
): { name: string; expires: Date | undefined } {
  const listed = artifactsByName.get(artifact);
  if (listed) return { name: listed.name, expires: listed.expires };
  const directory = elmoJsonName.includes("/") ? elmoJsonName.slice(0, elmoJsonName.lastIndexOf("/") + 1) : "";
  const name = `${directory}${artifact}`;
  return { name, expires: artifactsByName.get(name)?.expires };
}
