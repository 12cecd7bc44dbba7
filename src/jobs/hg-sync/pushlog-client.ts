/**
 * hg.mozilla.org's pushlog: `<repo>/json-pushes?version=2&full=1&startID=A&endID=B`
 * (startID exclusive, endID inclusive; see formats/pushlog). Read in pages so
 * a repository far behind never asks for one huge answer.
 */
import { PermanentJobError } from "../errors.ts";

export interface PushlogPush {
  pushId: number;
  user: string;
  date: Date;
  /** Tip-most last. */
  changesets: string[];
}

export interface PushlogPage {
  lastPushId: number;
  pushes: PushlogPush[];
}

export const PUSHLOG_PAGE_SIZE = 200;

function changesetNode(entry: unknown): string | undefined {
  if (typeof entry === "string") return entry.toLowerCase();
  if (entry && typeof entry === "object" && typeof (entry as { node?: unknown }).node === "string") return (entry as { node: string }).node.toLowerCase();
  return undefined;
}

export async function fetchPushlogPage(repoUrl: string, startId: number, endId: number, timeoutMs = 60_000): Promise<PushlogPage> {
  const url = `${repoUrl}/json-pushes?version=2&full=1&startID=${startId}&endID=${endId}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error", headers: { accept: "application/json" } });
  if (response.status === 404) throw new PermanentJobError(`pushlog not found at ${url} (404)`);
  if (!response.ok) throw new Error(`pushlog request ${url} answered ${response.status}`);
  const body = (await response.json()) as { lastpushid?: unknown; pushes?: Record<string, { user?: unknown; date?: unknown; changesets?: unknown[] }> };
  if (typeof body.lastpushid !== "number" || typeof body.pushes !== "object" || body.pushes === null) {
    throw new Error(`pushlog ${url} did not answer in the version 2 format`);
  }
  const pushes = Object.entries(body.pushes)
    .map(([id, push]): PushlogPush => ({
      pushId: Number(id),
      user: typeof push.user === "string" ? push.user : "",
      date: new Date(Number(push.date ?? 0) * 1000),
      changesets: (push.changesets ?? []).map(changesetNode).filter((n): n is string => n !== undefined && /^[0-9a-f]{40}$/.test(n)),
    }))
    .filter((push) => Number.isInteger(push.pushId) && push.pushId > startId && push.pushId <= endId)
    .sort((a, b) => a.pushId - b.pushId);
  return { lastPushId: body.lastpushid, pushes };
}
