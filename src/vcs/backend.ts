/**
 * The small interface both version-control back ends (hg, git) implement.
 *
 * Every method takes a local clone path produced by clonePathFor() and, where
 * it talks to upstream, a URL already accepted by checkRepositoryUrl(). Back
 * ends never build a shell command line: arguments go to the executable as a
 * list, with a minimal environment.
 */
import type { Logger } from "../core/log.ts";

export type VcsKind = "hg" | "git";

export type FileAction = "added" | "modified" | "removed";

/** One changeset as read from a clone, ready to be stored. */
export interface ChangesetRecord {
  /** 40-hex, lower case. */
  revision: string;
  author: string;
  description: string;
  date: Date;
  /** hg named branch; git has none (null). */
  branch: string | null;
  /** 0, 1 or 2 revisions, first parent first. */
  parents: string[];
  files: Array<{ path: string; action: FileAction }>;
}

export interface TransferOptions {
  log: Logger;
  signal?: AbortSignal;
}

export interface DiffResult {
  text: string;
  /** True when the diff was cut at maxBytes. */
  truncated: boolean;
}

export interface VcsBackend {
  readonly kind: VcsKind;
  /** Clones `url` into `dest` (which must not exist). Leaves no working copy. */
  clone(url: string, dest: string, options: TransferOptions): Promise<void>;
  /** Brings an existing clone up to date with `url`. */
  pull(repoPath: string, url: string, options: TransferOptions): Promise<void>;
  /** True when the folder holds a clone the tool can read. */
  isUsable(repoPath: string): Promise<boolean>;
  /**
   * Repairs what an interrupted operation left behind: rolls back an
   * unfinished transaction and removes lock files older than `staleAfterMs`.
   * Only called while holding the repository's sync lock. Returns what it did.
   */
  repair(repoPath: string, staleAfterMs: number, log: Logger): Promise<string[]>;
  /** Current heads (40-hex). */
  heads(repoPath: string): Promise<string[]>;
  /**
   * Every revision reachable from `heads` (and not from `exclude`), oldest
   * first (topological), in arrays of at most `batchSize` as the tool lists
   * them: a whole history is never held at once.
   */
  ancestors(repoPath: string, heads: string[], exclude?: string[], batchSize?: number): AsyncGenerator<string[]>;
  /** How many revisions `ancestors(heads)` lists, counted by the tool (for progress). */
  countAncestors(repoPath: string, heads: string[]): Promise<number>;
  /** Full records of the given revisions, in batches of at most `batchSize`, in the given order. */
  readChangesets(repoPath: string, revisions: string[], batchSize?: number): AsyncGenerator<ChangesetRecord[]>;
  /** A diff between two revisions, bounded to `maxBytes`. */
  diff(repoPath: string, from: string, to: string, options: { maxBytes: number }): Promise<DiffResult>;
}

/** Revisions given to a back end are hex (abbreviated or full): nothing option-like can pass. */
export function assertRevision(revision: string): string {
  if (!/^[0-9a-f]{4,40}$/i.test(revision)) throw new Error(`not a revision: ${JSON.stringify(revision.slice(0, 60))}`);
  return revision.toLowerCase();
}

/** Text for the database: PostgreSQL text cannot hold NUL, and lone surrogates are not UTF-8. */
export function cleanText(text: string): string {
  return text.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/**
 * A commit date from seconds since the epoch. History is written by whoever
 * pushes: a date outside what a Date (and PostgreSQL) can hold would make
 * every sync of the repository fail, so it is stored as the epoch, as git
 * shows a date it cannot represent.
 */
export function dateFromSeconds(seconds: number): Date {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? new Date(0) : date;
}
