/**
 * The VCS back ends the dashboard diffs with (hg-sync's), by repository kind.
 * Kept apart from server.ts so tests can start a dashboard without them.
 */
import type { VcsBackend, VcsKind } from "../vcs/backend.ts";
import { backendFor } from "../vcs/backends.ts";

export function diffBackends(): Partial<Record<VcsKind, VcsBackend>> {
  return { hg: backendFor("hg"), git: backendFor("git") };
}
