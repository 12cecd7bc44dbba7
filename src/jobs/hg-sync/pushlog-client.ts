/**
 * hg.mozilla.org's pushlog: `<repo>/json-pushes?version=2&startID=A&endID=B`
 * (startID exclusive, endID inclusive; see formats/pushlog). Read in pages so
 * a repository far behind never asks for one huge answer. Without `full=1`:
 * only the changeset ids are used (the rest is read from the clone), and the
 * full entries made a page of 200,000 changesets about 100 MB of JSON.
 *
 * Redirects are followed by hand, a few at most, and only to ALLOWED_HOSTS
 * (by default just the repository's own host): a pushlog server must not be
 * able to send us to another host, an internal one say.
 */
import { PermanentError } from "../../core/permanent-error.ts";
import { inSpan } from "../../core/tracing.ts";
import { discard, guardedFetch, type HostPolicy, readCapped } from "../../http/guarded-fetch.ts";

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
/**
 * A sanity bound on one page (decoded), far above what 200 pushes take even
 * for merge pushes of thousands of changesets (~43 bytes per changeset id).
 */
const PUSHLOG_MAX_BYTES = 256 * 1024 * 1024;

function changesetNode(entry: unknown): string | undefined {
  if (typeof entry === "string") return entry.toLowerCase();
  if (entry && typeof entry === "object" && typeof (entry as { node?: unknown }).node === "string") return (entry as { node: string }).node.toLowerCase();
  return undefined;
}

/**
 * One page of pushes. `allowedHosts` (ALLOWED_HOSTS entries) bounds where a
 * redirect may lead; without it, only the repository's own host. http is
 * accepted only when the repository URL itself is http (local stand-ins).
 */
export function fetchPushlogPage(repoUrl: string, startId: number, endId: number, timeoutMs = 60_000, allowedHosts?: readonly string[]): Promise<PushlogPage> {
  const attributes = { "pulse_bridge.repository": repoUrl, "pulse_bridge.pushlog.start_id": startId, "pulse_bridge.pushlog.end_id": endId };
  return inSpan(
    "pushlog page",
    attributes,
    async (span) => {
      const page = await readPushlogPage(repoUrl, startId, endId, timeoutMs, allowedHosts);
      span?.setAttribute("pulse_bridge.pushlog.pushes", page.pushes.length);
      return page;
    },
    "client",
  );
}

async function readPushlogPage(
  repoUrl: string,
  startId: number,
  endId: number,
  timeoutMs: number,
  allowedHosts: readonly string[] | undefined,
): Promise<PushlogPage> {
  const url = `${repoUrl}/json-pushes?version=2&startID=${startId}&endID=${endId}`;
  const repository = new URL(repoUrl);
  const policy: HostPolicy = {
    hosts: allowedHosts ?? [repository.host.toLowerCase()],
    describe: allowedHosts ? "ALLOWED_HOSTS" : `ALLOWED_HOSTS (the repository's host ${repository.host})`,
    allowHttp: repository.protocol === "http:",
  };
  const response = await guardedFetch(url, {
    policy,
    signal: AbortSignal.timeout(timeoutMs),
    what: `pushlog of ${repoUrl}`,
    headers: { accept: "application/json" },
  });
  if (response.status < 200 || response.status >= 300) discard(response.message);
  if (response.status === 404) throw new PermanentError(`pushlog not found at ${url} (404)`);
  if (response.status < 200 || response.status >= 300) throw new Error(`pushlog request ${url} answered ${response.status}`);
  const text = (await readCapped(response, PUSHLOG_MAX_BYTES, `pushlog ${url}`, "the pushlog page limit")).toString("utf8");
  let body: { lastpushid?: unknown; pushes?: Record<string, { user?: unknown; date?: unknown; changesets?: unknown[] }> };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // The parser's message quotes the body: say only what went wrong.
    throw new Error(`pushlog ${url} did not answer JSON`);
  }
  if (typeof body !== "object" || body === null || typeof body.lastpushid !== "number" || typeof body.pushes !== "object" || body.pushes === null) {
    throw new Error(`pushlog ${url} did not answer in the version 2 format`);
  }
  const pushes = Object.entries(body.pushes)
    .map(
      ([id, push]): PushlogPush => ({
        pushId: Number(id),
        user: typeof push.user === "string" ? push.user : "",
        date: new Date(Number(push.date ?? 0) * 1000),
        changesets: (push.changesets ?? []).map(changesetNode).filter((n): n is string => n !== undefined && /^[0-9a-f]{40}$/.test(n)),
      }),
    )
    .filter((push) => Number.isInteger(push.pushId) && push.pushId > startId && push.pushId <= endId)
    .sort((a, b) => a.pushId - b.pushId);
  return { lastPushId: body.lastpushid, pushes };
}
