/**
 * Repository URLs of a compare-locales run. elmo.json names its repository,
 * or else the task's `metadata.source` is a file URL inside it; the keys of a
 * comparison's `revisions` are paths resolved against that repository.
 * Stored URLs carry no trailing slash, like the `repo_url` of hg push
 * messages and the Repository rows of hg-sync.
 */
import { trimTrailingSlashes } from "../../core/urls.ts";

/**
 * The repository a task definition came from: `metadata.source` points at a
 * file in it (hg: `<repo>/file/<rev>/<path>`, GitHub: `<repo>/blob|tree/<ref>/<path>`).
 */
export function repositoryOfSource(source: string | undefined): string | undefined {
  if (!source) return undefined;
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  url.search = "";
  url.hash = "";
  if (url.hostname === "github.com") {
    const [owner, repo] = url.pathname.split("/").filter(Boolean);
    return owner && repo ? `${url.origin}/${owner}/${repo.replace(/\.git$/, "")}` : undefined;
  }
  const hgFile = /^(.*?)\/(?:file|raw-file|rev|log|annotate)\/[^/]+(?:\/|$)/.exec(url.pathname);
  return trimTrailingSlashes(`${url.origin}${hgFile ? hgFile[1] : url.pathname}`);
}

/**
 * Resolves a revisions key against the repository URL: `/l10n-central/de/`
 * against `https://hg.mozilla.org/l10n/gecko-strings/` is
 * `https://hg.mozilla.org/l10n-central/de`; a relative key is taken inside
 * the repository; an absolute URL stands for itself. Undefined when there is
 * nothing to resolve against or the result is not http(s).
 */
export function resolveRepositoryPath(base: string | undefined, key: string): string | undefined {
  try {
    const resolved = new URL(key, base === undefined ? undefined : `${trimTrailingSlashes(base)}/`);
    if (resolved.protocol !== "http:" && resolved.protocol !== "https:") return undefined;
    resolved.search = "";
    resolved.hash = "";
    return trimTrailingSlashes(resolved.toString());
  } catch {
    return undefined;
  }
}
