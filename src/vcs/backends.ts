/** The back end for a repository kind; and the dashboard's bounded diff of a clone. */
import type { DiffResult, VcsBackend, VcsKind } from "./backend.ts";
import { gitBackend } from "./git.ts";
import { hgBackend } from "./hg.ts";

export function backendFor(kind: VcsKind): VcsBackend {
  return kind === "git" ? gitBackend : hgBackend;
}

/**
 * Diff between two revisions of a clone (from clonePathFor), cut at
 * `maxBytes`. Revisions must be hex; anything else throws before a process runs.
 */
export function diffRevisions(kind: VcsKind, repoPath: string, from: string, to: string, options: { maxBytes: number }): Promise<DiffResult> {
  return backendFor(kind).diff(repoPath, from, to, options);
}
