/**
 * What the tour creates upstream, on the local stand-ins (src/stand-ins/),
 * and tracks as `pulse-bridge track` would: Mercurial repositories on the
 * hg.mozilla.org stand-in (gecko-strings and an l10n-central forest with de
 * and fr), a GitHub-like git repository, their pushes, and a finished
 * compare-locales task on the Taskcluster stand-in whose elmo.json compares
 * the revisions just pushed. Returns what the messages of demo-messages.ts
 * announce.
 */
import path from "node:path";
import { trackForest, trackRepository } from "../jobs/hg-sync/tracking.ts";
import type { GitUpstream } from "../stand-ins/git-upstream.ts";
import type { HgServer } from "../stand-ins/hg-server.ts";
import type { QueueApiStandIn, StandInArtifact } from "../stand-ins/queue-api-server.ts";
import { slugid } from "../stand-ins/slugid.ts";
import type { Database } from "../storage/prisma.ts";

/** One hg push, as an hgpushes changegroup.1 message describes it. */
export interface HgPushAnnouncement {
  repoUrl: string;
  /** The repository path, also the hgpushes routing key. */
  path: string;
  heads: string[];
  push: { pushid: number; user: string; time: number };
}

/** One git push, as a GitHub push event describes it. */
export interface GitPushAnnouncement {
  repoUrl: string;
  fullName: string;
  before: string;
  after: string;
  commits: Array<{
    id: string;
    message: string;
    timestamp: string;
    author: { name: string; email: string };
    added: string[];
    modified: string[];
    removed: string[];
  }>;
}

export interface DemoUpstreams {
  hgPushes: HgPushAnnouncement[];
  gitPush: GitPushAnnouncement;
  /** The compare-locales task, run 0 completed. */
  taskId: string;
  taskGroupId: string;
}

/** Where the demo's compare-locales task ran: the fields its definition and its status share. */
export const TASK_PLACEMENT = {
  provisionerId: "gecko-3",
  workerType: "b-linux-gcp",
  taskQueueId: "gecko-3/b-linux-gcp",
  schedulerId: "gecko-level-3",
  projectId: "none",
};

interface DemoCommit {
  author: string;
  message: string;
  /** Path → content. */
  files: Record<string, string>;
}

const LOCALIZER = { name: "Localizer", email: "l10n@example.org" };
const LOCALIZER_ID = `${LOCALIZER.name} <${LOCALIZER.email}>`;
const STRINGS_ID = "Strings <strings@example.org>";
const GIT_REPOSITORY = "mozilla-l10n/firefox-l10n-demo";
const NULL_SHA = "0".repeat(40);

const EN_US = {
  "browser/browser/browser.ftl": "browser-main-window-title = { -brand-full-name }\nnew-tab = New Tab\n",
  "browser/browser/preferences.ftl": "pane-general-title = General\npane-search-title = Search\n",
};
const TRANSLATIONS: Record<string, Record<string, string>> = {
  de: {
    "browser/browser/browser.ftl": "browser-main-window-title = { -brand-full-name }\nnew-tab = Neuer Tab\n",
    "browser/browser/preferences.ftl": "pane-general-title = Allgemein\n",
  },
  fr: {
    "browser/browser/browser.ftl": "browser-main-window-title = { -brand-full-name }\nnew-tab = Nouvel onglet\n",
    "browser/browser/preferences.ftl": "pane-general-title = Général\npane-search-title = Recherche\n",
  },
};

export async function createDemoUpstreams(db: Database, hg: HgServer, git: GitUpstream, taskcluster: QueueApiStandIn): Promise<DemoUpstreams> {
  // What `pulse-bridge track forest|repo` does, through the same functions.
  const hosts = ["127.0.0.1"];
  await trackForest(db, hosts, "l10n-central", hg.repoUrl("l10n-central"));
  await trackRepository(db, hosts, await hg.createRepo("l10n/gecko-strings"), { kind: "hg" });
  for (const code of Object.keys(TRANSLATIONS)) {
    await trackRepository(db, hosts, await hg.createRepo(`l10n-central/${code}`), { kind: "hg", forest: "l10n-central", locale: code });
  }
  await trackRepository(db, hosts, await git.createRepo(GIT_REPOSITORY), { kind: "git", name: GIT_REPOSITORY });

  const hgPushes: HgPushAnnouncement[] = [];
  const now = Math.floor(Date.now() / 1000);
  const pushHg = async (repo: string, user: string, commits: DemoCommit[], time: number) => {
    const commitSpecs = commits.map((c) => ({ user: c.author, message: c.message, files: c.files, date: `${time} 0` }));
    const { pushId, nodes } = await hg.push(repo, commitSpecs, { user, date: time });
    hgPushes.push({ repoUrl: hg.repoUrl(repo), path: repo, heads: [nodes.at(-1)!], push: { pushid: pushId, user, time } });
  };
  await pushHg(
    "l10n/gecko-strings",
    "strings@example.org",
    [{ author: STRINGS_ID, message: "Bug 1900001 - Add new tab string", files: { "browser/browser/browser.ftl": EN_US["browser/browser/browser.ftl"] } }],
    now - 120,
  );
  await pushHg(
    "l10n/gecko-strings",
    "strings@example.org",
    [
      {
        author: STRINGS_ID,
        message: "Bug 1900002 - Add preferences strings",
        files: { "browser/browser/preferences.ftl": EN_US["browser/browser/preferences.ftl"] },
      },
    ],
    now - 60,
  );
  for (const [code, files] of Object.entries(TRANSLATIONS)) {
    const commits = Object.entries(files).map(([file, content]) => ({
      author: LOCALIZER_ID,
      message: `Pontoon: Update ${code} localization of Firefox (${path.basename(file)})`,
      files: { [file]: content },
    }));
    await pushHg(`l10n-central/${code}`, "l10n@example.org", commits, now - 30);
  }
  const gitPush = await pushGit(git, GIT_REPOSITORY, [
    {
      author: LOCALIZER_ID,
      message: "Pontoon: Update German (de) localization of Firefox",
      files: { "de/browser/browser/browser.ftl": TRANSLATIONS.de!["browser/browser/browser.ftl"]! },
    },
    {
      author: LOCALIZER_ID,
      message: "Pontoon: Update French (fr) localization of Firefox",
      files: { "fr/browser/browser/browser.ftl": TRANSLATIONS.fr!["browser/browser/browser.ftl"]! },
    },
  ]);

  const head = (repo: string) => hgPushes.filter((a) => a.path === repo).at(-1)!.heads[0]!;
  const taskId = slugid();
  const taskGroupId = slugid();
  taskcluster.addTask({
    taskId,
    definition: compareLocalesTask(taskGroupId, `${hg.repoUrl("l10n/gecko-strings")}/file/${head("l10n/gecko-strings")}/.taskcluster.yml`),
    runs: [
      {
        runId: 0,
        state: "completed",
        resolved: new Date().toISOString(),
        artifacts: elmoArtifacts(hg, { geckoStrings: head("l10n/gecko-strings"), de: head("l10n-central/de"), fr: head("l10n-central/fr") }),
      },
    ],
  });
  return { hgPushes, gitPush, taskId, taskGroupId };
}

/** Commits and pushes `commits`, and describes them as GitHub's push event does. */
async function pushGit(git: GitUpstream, fullName: string, commits: DemoCommit[]): Promise<GitPushAnnouncement> {
  const before = await git.git(fullName, ["rev-parse", "--verify", "-q", "HEAD"]).then(
    (sha) => sha.trim(),
    () => NULL_SHA,
  );
  const date = new Date();
  const pushed: GitPushAnnouncement["commits"] = [];
  for (const commit of commits) {
    const id = await git.commit(fullName, commit.files, commit.message, { author: commit.author, date });
    // -z: status and path as separate NUL-terminated fields, whatever the path holds.
    const fields = (await git.git(fullName, ["diff-tree", "-r", "-z", "--root", "--no-commit-id", "--no-renames", "--name-status", id])).split("\0");
    const changes: Array<[string, string]> = [];
    for (let i = 0; i + 1 < fields.length; i += 2) changes.push([fields[i]!, fields[i + 1]!]);
    const [, name = commit.author, email = LOCALIZER.email] = /^(.*?)\s*<([^>]+)>$/.exec(commit.author) ?? [];
    pushed.push({
      id,
      message: commit.message,
      timestamp: date.toISOString(),
      author: { name, email },
      added: changes.filter(([s]) => s === "A").map(([, f]) => f),
      modified: changes.filter(([s]) => s === "M").map(([, f]) => f),
      removed: changes.filter(([s]) => s === "D").map(([, f]) => f),
    });
  }
  return { repoUrl: git.repoUrl(fullName), fullName, before, after: pushed.at(-1)!.id, commits: pushed };
}

/** elmo.json and the detail artifacts of a compare-locales run over de and fr. */
function elmoArtifacts(hg: HgServer, revisions: { geckoStrings: string; de: string; fr: string }): StandInArtifact[] {
  const summary = (changed: number, missing: number) => ({
    errors: 0,
    warnings: 0,
    missing,
    missing_w: missing * 3,
    report: 0,
    obsolete: 0,
    changed,
    changed_w: changed * 2,
    unchanged: 0,
    unchanged_w: 0,
    keys: 0,
  });
  const comparisons = [
    {
      locale: "de",
      config: "browser/locales/l10n.toml",
      artifact: "compares/browser.de.json",
      revisions: { "/l10n/gecko-strings/": revisions.geckoStrings, "/l10n-central/de/": revisions.de },
      summary: summary(3, 1),
    },
    {
      locale: "fr",
      config: "browser/locales/l10n.toml",
      artifact: "compares/browser.fr.json",
      revisions: { "/l10n/gecko-strings/": revisions.geckoStrings, "/l10n-central/fr/": revisions.fr },
      summary: summary(4, 0),
    },
  ];
  return [
    {
      name: "public/compare-locales/elmo.json",
      content: { version: "1.0", "compare-locales": "9.0.4", repository: `${hg.repoUrl("l10n/gecko-strings")}/`, comparisons },
    },
    ...comparisons.map((c) => ({ name: `public/compare-locales/${c.artifact}`, content: { details: {}, summary: { [c.locale]: c.summary } } })),
  ];
}

/** A Firefox-CI compare-locales task definition, in the Queue API's shape. */
function compareLocalesTask(taskGroupId: string, source: string): Record<string, unknown> {
  const created = new Date(Date.now() - 10 * 60_000);
  const hours = (n: number) => new Date(created.getTime() + n * 3600_000).toISOString();
  return {
    ...TASK_PLACEMENT,
    taskGroupId,
    dependencies: [taskGroupId],
    requires: "all-completed",
    routes: ["project.l10n.elmo.v1"],
    priority: "low",
    retries: 5,
    created: created.toISOString(),
    deadline: hours(24),
    expires: hours(90 * 24),
    scopes: [],
    payload: { command: [["compare-locales", "--json", "compares/browser.json", "_configs/browser.toml", "l10n-central", "de", "fr"]], maxRunTime: 1800 },
    metadata: { owner: "demo@example.org", source, name: "l10n-compare-locales", description: "compare-locales for the demo" },
    tags: { kind: "l10n" },
    extra: {},
  };
}
