/**
 * The layers of src/ hold (scripts/check-layers.mjs, also run by `npm run
 * lint`), and a wrong import fails the check with the rule's name: planted in
 * a copy of src/, one at a time.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const script = path.join(root, "scripts/check-layers.mjs");
const copies: string[] = [];

function copyWith(file: string, line: string): string {
  const copy = mkdtempSync(path.join(tmpdir(), "layers-"));
  copies.push(copy);
  cpSync(path.join(root, "src"), path.join(copy, "src"), { recursive: true, filter: (p) => !p.includes(`${path.sep}generated`) });
  appendFileSync(path.join(copy, file), `\n${line}\n`);
  return copy;
}

function check(copy: string) {
  const run = spawnSync(process.execPath, [script, copy], { encoding: "utf8" });
  return { status: run.status, output: run.stderr + run.stdout };
}

afterEach(() => {
  for (const copy of copies.splice(0)) rmSync(copy, { recursive: true, force: true });
});

describe("layers of src/", () => {
  it("the tree follows them", () => {
    expect(execFileSync(process.execPath, [script, root], { encoding: "utf8" })).toContain("every import of src/ follows");
  });

  it.each([
    ["src/bridge/ack-tracker.ts", 'import { openDatabase } from "../storage/prisma.ts";', "bridge-stays-thin"],
    ["src/bridge/ack-tracker.ts", 'import type { Database } from "../storage/prisma.ts";', "bridge-stays-thin"],
    ["src/routing/route-message.ts", 'import express from "express";', "bridge-loads-no-heavy-library"],
    ["src/vcs/clone-path.ts", 'import { POOLS } from "../jobs/pools.ts";', "vcs-imports-nothing-of-the-pools"],
    ["src/jobs/pool.ts", 'export { startBridge } from "../bridge/bridge.ts";', "pools-import-no-bridge-or-dashboard"],
    ["src/dashboard/basic-auth.ts", 'const pools = await import("../jobs/pools.ts");', "dashboard-imports-no-bridge-or-pools"],
    ["src/core/log.ts", 'import "../contract/queues.ts";', "core-imports-nothing-of-ours"],
    ["src/demo/run-demo.ts", 'import { registerStart } from "../cli/start.ts";', "demo-runs-start-on-stand-ins"],
    ["src/stand-ins/hg-server.ts", 'import { openDatabase } from "../storage/prisma.ts";', "stand-ins-stand-alone"],
    ["src/webhook/signature.ts", 'import { openDatabase } from "../storage/prisma.ts";', "webhook-validates-and-enqueues"],
  ])("%s: planting `%s` breaks %s", (file, line, rule) => {
    const result = check(copyWith(file, line));
    expect(result.status).toBe(1);
    expect(result.output).toContain(`layer rule broken: ${rule}: ${file}`);
  });

  it("a comment naming another layer is not an import", () => {
    expect(check(copyWith("src/bridge/ack-tracker.ts", '// see import { x } from "../storage/prisma.ts"')).status).toBe(0);
  });
});
