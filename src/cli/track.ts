/**
 * `pulse-bridge track forest NAME URL` and `track repo URL [--kind hg|git]
 * [--forest NAME] [--locale CODE]`: register what hg-sync follows. URLs go
 * through the same policy as the worker's, so what cannot be cloned cannot
 * be tracked.
 */
import { InvalidArgumentError, type Command } from "commander";
import type { CliContext } from "./context.ts";

/** Prisma and the URL policy, loaded when a track command runs. */
async function loadTracking() {
  const [{ openDatabase }, tracking] = await Promise.all([import("../storage/prisma.ts"), import("../jobs/hg-sync/tracking.ts")]);
  return { openDatabase, ...tracking };
}

function print(json: boolean, value: object, text: string): void {
  console.log(json ? JSON.stringify(value) : text);
}

export function registerTrack(program: Command, context: CliContext): void {
  const track = program.command("track").description("register a forest or a repository to follow");

  track
    .command("forest")
    .description("track a forest: new repositories under its URL (hgpushes newrepo.1) are tracked automatically")
    .argument("<name>", "forest name, e.g. l10n-central")
    .argument("<url>", "base URL, e.g. https://hg.mozilla.org/l10n-central")
    .option("--json", "print the result as JSON")
    .action(async (name: string, url: string, options: { json?: boolean }) => {
      const config = await context.config();
      const { openDatabase, trackForest } = await loadTracking();
      const db = openDatabase(config.database.url, { max: 1 });
      try {
        const forest = await trackForest(db, config.clones.allowedHosts, name, url);
        print(!!options.json, { forest: { id: forest.id, name: forest.name, url: forest.url } }, `tracking forest ${forest.name} at ${forest.url}`);
      } finally {
        await db.$disconnect();
      }
    });

  track
    .command("repo")
    .description("track a repository (hg or git)")
    .argument("<url>", "repository URL, e.g. https://hg.mozilla.org/l10n-central/de or https://github.com/o/r")
    .option("--kind <kind>", "hg or git (default: git for github.com or a .git URL, else hg)", (value: string) => {
      if (value !== "hg" && value !== "git") throw new InvalidArgumentError("must be hg or git");
      return value;
    })
    .option("--forest <name>", "forest the repository belongs to")
    .option("--locale <code>", "locale of the repository")
    .option("--json", "print the result as JSON")
    .action(async (url: string, options: { kind?: "hg" | "git"; forest?: string; locale?: string; json?: boolean }) => {
      const config = await context.config();
      const { openDatabase, trackRepository } = await loadTracking();
      const db = openDatabase(config.database.url, { max: 1 });
      try {
        const repo = await trackRepository(db, config.clones.allowedHosts, url, options);
        print(
          !!options.json,
          { repository: { id: repo.id, name: repo.name, url: repo.url, kind: repo.kind, forestId: repo.forestId, localeId: repo.localeId } },
          `tracking ${repo.kind} repository ${repo.name} at ${repo.url}`,
        );
      } finally {
        await db.$disconnect();
      }
    });
}
