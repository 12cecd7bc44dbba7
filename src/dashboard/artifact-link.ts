/**
 * `GET /artifacts/:comparisonId`: the detail artifact of a Comparison.
 *
 * Ingest stores only the artifact's Queue API URL (getArtifact), because
 * resolving every link of every run would cost a request each for links
 * nobody opens. The first request here asks the Queue API (without
 * following its 303), remembers where it pointed until the artifact expires
 * (its `expires` from the run's listing; a conservative TTL when unknown),
 * and answers 302. Later requests redirect straight from the database.
 *
 *   unknown comparison, missing or error artifact  -> 404 page
 *   the artifact's expiry has passed (or Taskcluster says it is gone) -> 410 page
 *   Queue API unreachable, slow, 5xx or 429        -> 502 page (nothing stored: the next request asks again)
 *   a redirect to a host that is not a Taskcluster host -> 502 page (never a redirect there)
 *
 * Open redirects: getArtifact 303s a `reference` artifact to whatever URL
 * the task that uploaded it chose. We redirect only to the Taskcluster hosts
 * (the configured root URLs' hosts and TC_ARTIFACT_HOSTS), checked again for
 * URLs resolved earlier, and ask only a configured deployment's host. Pages
 * name the status and host, never text from the Queue API's answer.
 *
 * Never a crash: every failure is a page and a log line.
 */
import express, { type Response, type Router } from "express";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { describeFetchError, type HostPolicy, refusal, showUrl } from "../http/guarded-fetch.ts";
import { TaskclusterHosts } from "../http/taskcluster-hosts.ts";
import type { Database } from "../storage/prisma.ts";

/** How long a resolved URL is trusted when the artifact's own expiry is unknown. */
export const RESOLVED_URL_TTL_MS = 60 * 60 * 1000;

export interface ArtifactLinkOptions {
  db: Database;
  log: Logger;
  /** Timeout of the Queue API request (TC_REQUEST_TIMEOUT). */
  requestTimeoutMs: number;
  /** The deployments and artifact hosts (TASKCLUSTER_ROOT_URL, TC_EXTRA_SOURCES, TC_ARTIFACT_HOSTS). */
  taskcluster: Pick<Config["taskcluster"], "rootUrl" | "extraSources" | "artifactHosts">;
}

type Resolution =
  | { kind: "redirect"; url: string }
  | { kind: "missing"; reason: string }
  | { kind: "expired"; reason: string }
  | { kind: "unavailable"; reason: string }
  | { kind: "refused"; reason: string; target: string };

function isAllowed(policy: HostPolicy, url: string): boolean {
  try {
    return refusal(policy, new URL(url)) === undefined;
  } catch {
    return false;
  }
}

export function artifactLinkRouter({ db, log, requestTimeoutMs, taskcluster }: ArtifactLinkOptions): Router {
  const router = express.Router();
  const hosts = TaskclusterHosts.fromConfig(taskcluster);

  router.get("/artifacts/:comparisonId", async (request, response) => {
    const raw = request.params.comparisonId;
    const id = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    try {
      const comparison = Number.isSafeInteger(id)
        ? await db.comparison.findUnique({
            where: { id },
            select: { id: true, artifactName: true, artifactUrl: true, artifactExpiresAt: true, resolvedUrl: true, resolvedExpiresAt: true },
          })
        : null;
      if (!comparison) return page(response, 404, "Comparison not found", `There is no comparison ${raw}.`);
      const name = comparison.artifactName;
      const now = new Date();

      if (comparison.artifactExpiresAt && comparison.artifactExpiresAt <= now) {
        return page(
          response,
          410,
          "Artifact expired",
          `The artifact ${name} expired on ${comparison.artifactExpiresAt.toISOString()}; Taskcluster no longer keeps it.`,
        );
      }
      const policy = hosts.policyForApiUrl(comparison.artifactUrl);
      if (!policy) {
        log.warn({ comparisonId: comparison.id, artifact: name }, "artifact link: stored URL is not on a configured Taskcluster deployment");
        return page(
          response,
          502,
          "Taskcluster deployment not configured",
          `The artifact ${name} belongs to a Taskcluster deployment this dashboard is not configured for.`,
        );
      }
      // A URL resolved earlier (perhaps by an older version, or before TC_ARTIFACT_HOSTS was narrowed) is checked again.
      if (comparison.resolvedUrl && comparison.resolvedExpiresAt && comparison.resolvedExpiresAt > now && isAllowed(policy, comparison.resolvedUrl)) {
        return response.redirect(302, comparison.resolvedUrl);
      }

      const resolution = await resolve(comparison.artifactUrl, requestTimeoutMs, policy);
      switch (resolution.kind) {
        case "redirect": {
          const expiresAt = comparison.artifactExpiresAt ?? new Date(now.getTime() + RESOLVED_URL_TTL_MS);
          await db.comparison.update({ where: { id: comparison.id }, data: { resolvedUrl: resolution.url, resolvedExpiresAt: expiresAt } });
          return response.redirect(302, resolution.url);
        }
        case "expired":
          // Remember it: the artifact will not come back.
          await db.comparison.update({ where: { id: comparison.id }, data: { artifactExpiresAt: now, resolvedUrl: null, resolvedExpiresAt: null } });
          return page(response, 410, "Artifact expired", `The artifact ${name} is gone from Taskcluster (${resolution.reason}).`);
        case "missing":
          return page(response, 404, "Artifact not found", `The artifact ${name} is not available (${resolution.reason}).`);
        case "refused":
          log.warn({ comparisonId: comparison.id, artifact: name, target: resolution.target, reason: resolution.reason }, "artifact link: redirect refused");
          return page(
            response,
            502,
            "Artifact host not allowed",
            `The Taskcluster Queue API redirected ${name} elsewhere: ${resolution.reason}. This dashboard redirects only to Taskcluster hosts.`,
          );
        case "unavailable":
          log.warn({ comparisonId: comparison.id, artifact: name, reason: resolution.reason }, "artifact link: Queue API unavailable");
          return page(
            response,
            502,
            "Taskcluster unavailable",
            `The Taskcluster Queue API did not answer usefully for ${name} (${resolution.reason}). Try again later.`,
          );
      }
    } catch (error) {
      log.error({ err: error, comparisonId: raw }, "artifact link failed");
      if (!response.headersSent) page(response, 500, "Internal error", "The artifact link could not be looked up.");
    }
  });

  return router;
}

/** Asks getArtifact where the artifact lives, without following the redirect. */
async function resolve(artifactUrl: string, timeoutMs: number, policy: HostPolicy): Promise<Resolution> {
  let answer: globalThis.Response;
  try {
    answer = await fetch(artifactUrl, { redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    return { kind: "unavailable", reason: describeFetchError(error) };
  }
  // Only the status matters; the body (JSON from Taskcluster, or anything) is not repeated.
  await answer.body?.cancel().catch(() => {});
  const location = answer.headers.get("location");
  if (answer.status >= 300 && answer.status < 400 && location) {
    let url: URL;
    try {
      url = new URL(location, artifactUrl);
    } catch {
      return { kind: "unavailable", reason: "the Queue API redirected to an unusable location" };
    }
    const refused = refusal(policy, url);
    // The page names the host only: the path was chosen by whoever made the artifact.
    if (refused) return { kind: "refused", reason: refused, target: showUrl(url) };
    return { kind: "redirect", url: url.toString() };
  }
  const reason = `HTTP ${answer.status}`;
  if (answer.status === 410) return { kind: "expired", reason };
  // 424: an error artifact (the worker could not upload it); 403: not public.
  if (answer.status === 404 || answer.status === 424 || answer.status === 403) return { kind: "missing", reason };
  return { kind: "unavailable", reason };
}

function page(response: Response, status: number, title: string, text: string): void {
  response
    .status(status)
    .type("html")
    .set("Cache-Control", "no-store")
    .send(
      `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>\n`,
    );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
