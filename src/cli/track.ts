/**
 * `pulse-bridge track forest NAME URL` and `track repo URL [--kind hg|git]
 * [--forest NAME] [--locale CODE]`: register what hg-sync follows. URLs go
 * through the same policy as the worker's, so what cannot be cloned cannot
 * be tracked.
 *
 * Tracking starts work at once: the command enqueues the poke the periodic
 * reconcile would make (`first-sync.ts`), so the next free hg-sync worker
 * clones and imports the repository now rather than within
 * RECONCILE_INTERVAL. `--no-sync` only writes the row.
 */
import { type Command, InvalidArgumentError } from "commander";
import type { Config } from "../core/config.ts";
import { missingToolsProblem, type Tool } from "../core/prerequisites.ts";
import type { CliContext } from "./context.ts";

/** Prisma and the URL policy, loaded when a track command runs. */
async function loadTracking() {
  const [{ openDatabase }, tracking] = await Promise.all([import("../storage/prisma.ts"), import("../jobs/hg-sync/tracking.ts")]);
  return { openDatabase, ...tracking };
}

function print(json: boolean, value: object, text: string): void {
  console.log(json ? JSON.stringify(value) : text);
}

/** "10m", "90s": how long the next reconcile may take to come, for the messages. */
function interval(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`;
}

/**
 * Enqueues the first sync of each repository. The rows are written already:
 * a Redis that does not take the jobs fails the command with what to do
 * (the next reconcile still finds them).
 */
async function startSyncs(config: Config, repoUrls: string[]) {
  const { requestSyncs } = await import("../jobs/hg-sync/first-sync.ts");
  try {
    return await requestSyncs(config, repoUrls);
  } catch (error) {
    const { redactText } = await import("../core/redact.ts");
    throw new Error(
      `tracked, but the first sync could not be enqueued (Redis: ${redactText((error as Error).message)}): run the command again once Redis answers, or the next reconcile (within ${interval(config.hgSync.reconcileIntervalMs)}) syncs it`,
    );
  }
}

/**
 * Tracking needs no tool, but its sync does: a note on stderr when this
 * machine lacks it (the workers may run elsewhere, so it does not fail).
 */
function noteMissingTool(tool: Tool): void {
  const problem = missingToolsProblem([tool], "syncing it (worker hg-sync)");
  if (problem !== undefined) process.stderr.write(`pulse-bridge: note: ${problem}\n`);
}

function syncLine(sync: { repoUrl: string; jobId: string; added: boolean }): string {
  return sync.added ? `first sync of ${sync.repoUrl} enqueued (job ${sync.jobId})` : `a sync of ${sync.repoUrl} was already waiting (job ${sync.jobId})`;
}

export function registerTrack(program: Command, context: CliContext): void {
  const track = program.command("track").description("register a forest or a repository to follow");

  track
    .command("forest")
    .description("track a forest: new repositories under its URL (hgpushes newrepo.1) are tracked automatically; its known repositories are synced at once")
    .argument("<name>", "forest name, e.g. l10n-central")
    .argument("<url>", "base URL, e.g. https://hg.mozilla.org/l10n-central")
    .option("--no-sync", "do not enqueue a sync of the forest's tracked repositories now (the next reconcile does)")
    .option("--json", "print the result as JSON")
    .action(async (name: string, url: string, options: { json?: boolean; sync: boolean }) => {
      const config = await context.config();
      const { openDatabase, trackForest } = await loadTracking();
      const db = openDatabase(config.database, { atMost: 1 });
      let forest: { id: number; name: string; url: string };
      let repositories: string[];
      try {
        forest = await trackForest(db, config.clones.allowedHosts, name, url);
        repositories = (await db.repository.findMany({ where: { forestId: forest.id, archived: false }, select: { url: true }, orderBy: { id: "asc" } })).map(
          (r) => r.url,
        );
      } finally {
        await db.$disconnect();
      }
      const syncs = options.sync ? await startSyncs(config, repositories) : [];
      noteMissingTool("hg");
      const lines = [`tracking forest ${forest.name} at ${forest.url}`];
      if (repositories.length === 0) {
        lines.push(
          "it has no tracked repositories yet: new ones arrive by hgpushes newrepo messages (tracked once their first clone works); add existing ones with: pulse-bridge track repo URL --forest NAME",
        );
      } else if (options.sync) {
        lines.push(
          ...syncs.map(syncLine),
          `${syncs.length} repositor${syncs.length === 1 ? "y" : "ies"} of the forest will be synced by the next free hg-sync worker`,
        );
      } else {
        lines.push(
          `--no-sync: its ${repositories.length} tracked repositor${repositories.length === 1 ? "y is" : "ies are"} synced by the next reconcile (within ${interval(config.hgSync.reconcileIntervalMs)}) or push`,
        );
      }
      print(
        !!options.json,
        {
          forest: { id: forest.id, name: forest.name, url: forest.url },
          repositories: repositories.length,
          sync: options.sync ? { requested: true, jobs: syncs } : { requested: false },
        },
        lines.join("\n"),
      );
    });

  track
    .command("repo")
    .description("track a repository (hg or git) and enqueue its first sync")
    .argument("<url>", "repository URL, e.g. https://hg.mozilla.org/l10n-central/de or https://github.com/o/r")
    .option("--kind <kind>", "hg or git (default: git for github.com or a .git URL, else hg)", (value: string) => {
      if (value !== "hg" && value !== "git") throw new InvalidArgumentError("must be hg or git");
      return value;
    })
    .option("--forest <name>", "forest the repository belongs to")
    .option("--locale <code>", "locale of the repository")
    .option("--no-sync", "only record it: the first clone waits for the next reconcile or push")
    .option("--json", "print the result as JSON")
    .action(async (url: string, options: { kind?: "hg" | "git"; forest?: string; locale?: string; json?: boolean; sync: boolean }) => {
      const config = await context.config();
      const { openDatabase, trackRepository } = await loadTracking();
      const db = openDatabase(config.database, { atMost: 1 });
      let repo: Awaited<ReturnType<typeof trackRepository>>;
      try {
        repo = await trackRepository(db, config.clones.allowedHosts, url, { kind: options.kind, forest: options.forest, locale: options.locale });
      } finally {
        await db.$disconnect();
      }
      const [sync] = options.sync ? await startSyncs(config, [repo.url]) : [];
      noteMissingTool(repo.kind);
      const lines = [`tracking ${repo.kind} repository ${repo.name} at ${repo.url}`];
      lines.push(
        sync
          ? `${syncLine(sync)}: the next free hg-sync worker clones and imports it`
          : `--no-sync: its first clone waits for the next reconcile (within ${interval(config.hgSync.reconcileIntervalMs)}) or push`,
      );
      print(
        !!options.json,
        {
          repository: { id: repo.id, name: repo.name, url: repo.url, kind: repo.kind, forestId: repo.forestId, localeId: repo.localeId },
          sync: sync ? { requested: true, ...sync } : { requested: false },
        },
        lines.join("\n"),
      );
    });
}
