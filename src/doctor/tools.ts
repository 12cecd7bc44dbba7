/** Node and the tools hg-sync (and the dashboard's diffs) run: hg and git on PATH. */
import { MINIMUM_NODE, NODE_INSTALL_HINT, TARGET_NODE } from "../core/prerequisites.ts";
import { minimalEnv, runTool } from "../vcs/run-tool.ts";
import { ALL_ROLES, type CheckResult, reason, result } from "./check.ts";

const TOOL_TIMEOUT_MS = 5_000;

export function checkNode(version = process.versions.node): CheckResult {
  const major = Number(version.split(".")[0]);
  if (major < MINIMUM_NODE) {
    return result("node", ALL_ROLES, "fail", `Node ${version} is older than ${MINIMUM_NODE}`, `install Node ${TARGET_NODE}: ${NODE_INSTALL_HINT}`);
  }
  if (major < TARGET_NODE) return result("node", ALL_ROLES, "warn", `Node ${version} works; the project targets ${TARGET_NODE}`, `install Node ${TARGET_NODE}`);
  return result("node", ALL_ROLES, "ok", `Node ${version}`);
}

interface Tool {
  name: "hg" | "git";
  args: string[];
  env: Record<string, string>;
  aptPackage: string;
  /** The version in the tool's first line of output. */
  version: RegExp;
}

const TOOLS: Tool[] = [
  { name: "hg", args: ["--version", "--quiet"], env: minimalEnv({ HGPLAIN: "1", HGRCPATH: "" }), aptPackage: "mercurial", version: /version ([^\s)]+)/ },
  {
    name: "git",
    args: ["--version"],
    env: minimalEnv({ GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" }),
    aptPackage: "git",
    version: /version (\S+)/,
  },
];

async function checkTool(tool: Tool): Promise<CheckResult> {
  const neededBy = ["worker hg-sync", "dashboard"];
  try {
    const { stdout } = await runTool(tool.name, tool.args, { env: tool.env, signal: AbortSignal.timeout(TOOL_TIMEOUT_MS), maxBytes: 4096 });
    const line = stdout.toString("utf8").split("\n")[0]!.trim();
    return result(tool.name, neededBy, "ok", `${tool.name} ${tool.version.exec(line)?.[1] ?? line}`);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") {
      return result(tool.name, neededBy, "fail", `${tool.name} is not on PATH`, `install it: apt-get install -y ${tool.aptPackage}`);
    }
    return result(
      tool.name,
      neededBy,
      "fail",
      `${tool.name} ${tool.args.join(" ")} failed: ${reason(error)}`,
      `reinstall it: apt-get install -y --reinstall ${tool.aptPackage}`,
    );
  }
}

export function checkTools(): Promise<CheckResult[]> {
  return Promise.all(TOOLS.map(checkTool));
}
