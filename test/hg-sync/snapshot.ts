/** A canonical, id-free dump of the history tables, to compare two databases. */
import type { Database } from "../../src/storage/prisma.ts";

export async function historySnapshot(db: Database) {
  const repositories = await db.repository.findMany({ orderBy: { url: "asc" }, select: { name: true, url: true, lastPushId: true } });
  const pushes = await db.push.findMany({
    include: { repository: { select: { url: true } }, changesets: { orderBy: { position: "asc" }, include: { changeset: { select: { revision: true } } } } },
  });
  const changesets = await db.changeset.findMany({
    include: {
      branch: true,
      parents: { orderBy: { position: "asc" }, include: { parent: { select: { revision: true } } } },
      files: { include: { file: true } },
      repositories: { include: { repository: { select: { url: true } } } },
    },
  });
  return {
    repositories,
    pushes: pushes
      .map((p) => ({
        repo: p.repository.url,
        pushId: p.pushId,
        user: p.user,
        pushedAt: p.pushedAt.toISOString(),
        revisions: p.changesets.map((c) => c.changeset.revision),
      }))
      .sort((a, b) => a.repo.localeCompare(b.repo) || a.pushId - b.pushId),
    changesets: changesets
      .map((c) => ({
        revision: c.revision,
        author: c.author,
        description: c.description,
        date: c.date?.toISOString(),
        branch: c.branch?.name,
        placeholder: c.placeholder,
        parents: c.parents.map((p) => p.parent.revision),
        files: c.files.map((f) => `${f.action} ${f.file.path}`).sort(),
        repositories: c.repositories.map((r) => r.repository.url).sort(),
      }))
      .sort((a, b) => a.revision.localeCompare(b.revision)),
  };
}
