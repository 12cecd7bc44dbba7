/** The URL forms every layer agrees on (job ids, lock names, clone folders, links). */

/** Identity of a repository in ids, lock names and clone folders: the URL without scheme or trailing slash, lower case. */
export function repositoryKey(repoUrl: string): string {
  return trimTrailingSlashes(repoUrl.replace(/^[a-z]+:\/\//i, "")).toLowerCase();
}

/** `https://host/a/` → `https://host/a`: root URLs and repository URLs are compared and joined without it. */
export function trimTrailingSlashes(url: string): string {
  return url.replace(/\/+$/, "");
}
