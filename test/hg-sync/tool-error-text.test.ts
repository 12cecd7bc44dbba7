/** What of a failed hg/git run's stderr may reach job errors, /api/jobs and Bull Board. */
import { describe, expect, it } from "vitest";
import { toolErrorDetail } from "../../src/vcs/run-tool.ts";

const MARKER = "SERVER-SAID-f00dfeed";

describe("tool error text", () => {
  it("cleans tool messages: first meaningful line, no quoted blocks, remote lines, credentials or control characters", () => {
    expect(
      toolErrorDetail(`remote: ${MARKER}\nremote: more\nfatal: unable to access 'https://user:secret@h/r/': The requested URL returned error: 500\n`),
    ).toBe("fatal: unable to access 'https://***@h/r/': The requested URL returned error: 500");
    expect(
      toolErrorDetail(
        `real URL is http://evil/${MARKER}\nabort: 'http://h/r' does not appear to be an hg repository:\n---%<--- (text/html)\n${MARKER}\n---%<---\n`,
      ),
    ).toBe("abort: 'http://h/r' does not appear to be an hg repository:");
    expect(toolErrorDetail(`abort: HTTP Error 404: ${MARKER}\n`)).toBe("abort: HTTP Error 404");
    expect(toolErrorDetail(`abort: 'http://h/r' sent a broken Content-Type header (${MARKER})\n`)).toBe(
      "abort: 'http://h/r' sent a broken Content-Type header",
    );
    expect(toolErrorDetail("abort: \x1b[31mred\x07\x00 text\n")).toBe("abort: [31mred text");
    expect(toolErrorDetail(`abort: ${"x".repeat(1000)}`)).toHaveLength(200);
  });
});
