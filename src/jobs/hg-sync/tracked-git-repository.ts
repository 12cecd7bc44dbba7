/**
 * The webhook receiver's question "is this repository one we sync?", answered
 * from the same rows (and URL matching) the hg-sync worker uses, so the
 * receiver enqueues exactly what the worker would sync.
 */
import type { Database } from "../../storage/prisma.ts";
import { findRepository } from "./tracking.ts";

export function trackedGitRepository(db: Database): (repoUrl: string) => Promise<boolean> {
  return async (repoUrl) => {
    const repo = await findRepository(db, repoUrl);
    return repo !== undefined && !repo.archived && repo.kind === "git";
  };
}
