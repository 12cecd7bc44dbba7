/**
 * One line of `pulse-bridge doctor`: what was checked, how it went, and what
 * to do when it did not. `fail` means a role cannot do its work (the command
 * exits non-zero); `warn` is worth knowing but does not stop a role; `skip`
 * is a check that could not run because another one failed first.
 */
export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface CheckResult {
  /** Short and stable, e.g. `redis eviction`: scripts match on it. */
  check: string;
  status: CheckStatus;
  /** What was found (URLs without passwords). */
  detail: string;
  /** What to do about it; absent when there is nothing to do. */
  fix?: string;
  /** The roles that need it. */
  neededBy: string[];
}

export const ALL_ROLES = ["bridge", "worker hg-sync", "worker tc-ingest", "dashboard", "webhook", "replay", "track"];

export function result(check: string, neededBy: string[], status: CheckStatus, detail: string, fix?: string): CheckResult {
  return fix === undefined ? { check, status, detail, neededBy } : { check, status, detail, fix, neededBy };
}

/** Rejects with "did not answer within N s" once `ms` have passed. */
export function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The message of an error, one line, for a detail. */
export function reason(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  const code = (error as { code?: unknown }).code;
  const line = text.split("\n")[0]!.trim();
  return line || (typeof code === "string" ? code : "unknown error");
}
