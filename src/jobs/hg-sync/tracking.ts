/**
 * What we follow: Forests and Repositories in the database. Used by
 * `pulse-bridge track` and by the worker (is this repository tracked? is a
 * new repository under a tracked Forest?).
 */

import { trimTrailingSlashes } from "../../core/urls.ts";
import type { Database, RepositoryKind } from "../../storage/prisma.ts";
import { checkRepositoryUrl } from "../../vcs/url-policy.ts";

export interface TrackedRepository {
  id: number;
  name: string;
  url: string;
  kind: RepositoryKind;
  lastPushId: number;
  archived: boolean;
}

/** URL without surrounding blanks or trailing slashes, for lookups (the stored URLs are canonical). */
function lookupUrl(url: string): string {
  return trimTrailingSlashes(url.trim());
}

export async function findRepository(db: Database, repoUrl: string): Promise<TrackedRepository | undefined> {
  const url = lookupUrl(repoUrl);
  const repo = await db.repository.findFirst({
    where: { OR: [{ url }, { url: url.replace(/\.git$/, "") }, { url: `${url}.git` }] },
    select: { id: true, name: true, url: true, kind: true, lastPushId: true, archived: true },
  });
  return repo ?? undefined;
}

/** The kind a URL implies: github.com or a `.git` path means git. */
function kindFromUrl(url: string): RepositoryKind {
  try {
    const parsed = new URL(url);
    return parsed.hostname === "github.com" || trimTrailingSlashes(parsed.pathname).endsWith(".git") ? "git" : "hg";
  } catch {
    return "hg";
  }
}

export async function trackForest(db: Database, allowedHosts: readonly string[], name: string, url: string) {
  if (!/^[A-Za-z0-9._/-]{1,200}$/.test(name)) throw new Error(`forest name ${JSON.stringify(name)} may only contain letters, digits and . _ / -`);
  const canonical = checkRepositoryUrl(url, allowedHosts);
  return db.forest.upsert({ where: { name }, create: { name, url: canonical }, update: { url: canonical, archived: false } });
}

export async function trackRepository(
  db: Database,
  allowedHosts: readonly string[],
  url: string,
  options: { kind?: RepositoryKind; forest?: string; locale?: string; name?: string } = {},
) {
  const canonical = checkRepositoryUrl(url, allowedHosts);
  const kind = options.kind ?? kindFromUrl(canonical);
  const name = options.name ?? new URL(canonical).pathname.replace(/^\/+/, "");
  let forestId: number | undefined;
  if (options.forest !== undefined) {
    const forest = await db.forest.findUnique({ where: { name: options.forest } });
    if (!forest) throw new Error(`no forest named ${JSON.stringify(options.forest)} (track it first: pulse-bridge track forest NAME URL)`);
    forestId = forest.id;
  }
  let localeId: number | undefined;
  if (options.locale !== undefined) {
    if (!/^[A-Za-z0-9@_-]{1,40}$/.test(options.locale)) throw new Error(`locale code ${JSON.stringify(options.locale)} is not valid`);
    localeId = (await db.locale.upsert({ where: { code: options.locale }, create: { code: options.locale }, update: {} })).id;
  }
  return db.repository.upsert({
    where: { url: canonical },
    create: { name, url: canonical, kind, forestId, localeId },
    update: { kind, archived: false, ...(forestId !== undefined ? { forestId } : {}), ...(localeId !== undefined ? { localeId } : {}) },
  });
}

/** The tracked, non-archived Forest whose URL is a prefix of `repoUrl`, if any. */
export async function forestFor(db: Database, repoUrl: string) {
  const url = lookupUrl(repoUrl);
  const forests = await db.forest.findMany({ where: { archived: false } });
  return forests.filter((forest) => url.startsWith(`${lookupUrl(forest.url)}/`)).sort((a, b) => b.url.length - a.url.length)[0];
}
