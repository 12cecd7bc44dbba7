/** A failing hg or git command is reported by its subcommand, so operators see "hg pull failed", not a config value. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { minimalEnv, runTool, subcommandOf, ToolError } from "../../src/vcs/run-tool.ts";

describe("tool errors", () => {
  it("names the subcommand, skipping the values of global options", () => {
    expect(subcommandOf(["--config", "ui.report_untrusted=false", "pull", "-R", "x"])).toBe("pull");
    expect(subcommandOf(["-c", "protocol.allow=never", "fetch", "--prune"])).toBe("fetch");
    expect(subcommandOf(["--quiet"])).toBe("");
  });

  it("reports a real failing hg pull as 'hg pull'", async () => {
    const empty = await mkdtemp(path.join(tmpdir(), "pb-tool-error-"));
    try {
      const attempt = runTool("hg", ["--config", "ui.report_untrusted=false", "pull", "-R", empty, "http://127.0.0.1:9/nothing"], { env: minimalEnv({}) });
      await expect(attempt).rejects.toBeInstanceOf(ToolError);
      await expect(attempt).rejects.toThrow(/^hg pull failed \(exit \d+\)/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
