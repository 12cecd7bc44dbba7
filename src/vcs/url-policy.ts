/**
 * Which repository URLs we will hand to hg or git (docs/ARCHITECTURE.md, threat model).
 *
 * Both tools interpret some URL shapes as commands (`ext::sh -c ...`,
 * `--upload-pack=...`) or as local paths (`file:`, `/etc`), so anything that
 * is not a plain http(s) URL on ALLOWED_HOSTS is refused here, before any
 * process is spawned. The refusal is permanent: retrying cannot help.
 */
import { PermanentError } from "../core/permanent-error.ts";
import { trimTrailingSlashes } from "../core/urls.ts";

export class RefusedUrlError extends PermanentError {
  override name = "RefusedUrlError";
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`refused repository URL ${JSON.stringify(url.slice(0, 200))}: ${reason}`);
  }
}

/**
 * Returns the canonical form (`<scheme>://<host>/<path>` without trailing
 * slash, query or fragment) of an acceptable URL, or throws RefusedUrlError.
 */
export function checkRepositoryUrl(url: unknown, allowedHosts: readonly string[]): string {
  if (typeof url !== "string" || url === "") throw new RefusedUrlError(String(url), "not a URL");
  if (url.length > 2048) throw new RefusedUrlError(url, "longer than 2048 characters");
  if (/[\s\u0000-\u001f\u007f]/.test(url)) throw new RefusedUrlError(url, "contains whitespace or control characters");
  if (url.startsWith("-")) throw new RefusedUrlError(url, "looks like a command-line option");
  if (!/^https?:\/\//i.test(url)) throw new RefusedUrlError(url, "only http:// and https:// URLs are cloned");
  if (url.includes("::")) throw new RefusedUrlError(url, "contains a transport prefix (::)");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RefusedUrlError(url, "not a valid URL");
  }
  if (parsed.username || parsed.password) throw new RefusedUrlError(url, "credentials in URLs are not accepted");
  if (parsed.search || parsed.hash) throw new RefusedUrlError(url, "query strings and fragments are not accepted");
  // new URL() already resolved dot segments; refuse them in the raw text too
  // (also percent-encoded), since they only ever mean an attempt to escape.
  const rawPath = url.replace(/^https?:\/\/[^/]*/i, "");
  if (rawPath.split("/").some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) throw new RefusedUrlError(url, "path contains '.' or '..' segments");
  if (/%2f|%5c|%00/i.test(rawPath) || rawPath.includes("\\")) throw new RefusedUrlError(url, "path contains encoded separators");
  const host = parsed.host.toLowerCase();
  const hostname = parsed.hostname.toLowerCase();
  // An entry without a port allows that host on any port; with a port, only that one.
  const allowed = allowedHosts.some((entry) => (entry.includes(":") ? entry === host : entry === hostname));
  if (!allowed) throw new RefusedUrlError(url, `host ${host} is not in ALLOWED_HOSTS (${allowedHosts.join(", ")})`);
  const pathname = trimTrailingSlashes(parsed.pathname);
  if (pathname === "") throw new RefusedUrlError(url, "names no repository path");
  return `${parsed.protocol}//${host}${pathname}`;
}
