/** The dashboard's building blocks that guard secrets: basic-auth parsing/comparison and redaction of rendered job data. */
import { describe, expect, it } from "vitest";
import { credentialsMatch, parseBasicAuth } from "../../src/dashboard/basic-auth.ts";
import { redactSecrets, redactText, redactUrlsDeep } from "../../src/dashboard/redact-secrets.ts";

const header = (text: string) => `Basic ${Buffer.from(text).toString("base64")}`;

describe("basic auth", () => {
  it("parses credentials, passwords with colons included, and rejects malformed headers", () => {
    expect(parseBasicAuth(header("ops:pa:ss"))).toEqual({ user: "ops", password: "pa:ss" });
    expect(parseBasicAuth(undefined)).toBeUndefined();
    expect(parseBasicAuth("Bearer abc")).toBeUndefined();
    expect(parseBasicAuth(header("no-colon"))).toBeUndefined();
  });

  it("accepts only the exact user and password", () => {
    expect(credentialsMatch({ user: "ops", password: "s3cret" }, "ops", "s3cret")).toBe(true);
    expect(credentialsMatch({ user: "ops", password: "s3cre" }, "ops", "s3cret")).toBe(false);
    expect(credentialsMatch({ user: "op", password: "s3cret" }, "ops", "s3cret")).toBe(false);
    expect(credentialsMatch(undefined, "ops", "s3cret")).toBe(false);
  });
});

describe("redaction of rendered job data", () => {
  it("masks secret-named keys and credentials in URLs, anywhere in the data", () => {
    const data = {
      message: {
        exchange: "exchange/hgpushes/v2",
        headers: { Authorization: "Bearer abc", "x-api-key": "k", CC: ["route.project.l10n.elmo.v1"] },
        body: '{"url": "amqps://elmo:hunter2@pulse.mozilla.org:5671"}',
      },
      list: [{ password: "p" }, "https://user:pw@example.org/x"],
    };
    const shown = JSON.stringify(redactSecrets(data));
    for (const secret of ["Bearer abc", '"k"', "hunter2", '"p"', ":pw@"]) expect(shown).not.toContain(secret);
    expect(shown).toContain("route.project.l10n.elmo.v1");
    expect(shown).toContain("amqps://elmo:***@pulse.mozilla.org:5671");
  });
});

describe("redaction of text", () => {
  it("masks a token in a URL's user part as well as user:password, idempotently, and leaves other text alone", () => {
    expect(redactText("clone https://ghp_abc123@github.com/o/r failed")).toBe("clone https://***@github.com/o/r failed");
    expect(redactText("https://x-access-token:tok@github.com/o/r and ssh://git:pw@host/x")).toBe(
      "https://x-access-token:***@github.com/o/r and ssh://git:***@host/x",
    );
    expect(redactText(redactText("https://a:b@h/x https://t@h/y"))).toBe("https://a:***@h/x https://***@h/y");
    expect(redactText("mail test@example.org, https://hg.mozilla.org/x?y=a@b")).toBe("mail test@example.org, https://hg.mozilla.org/x?y=a@b");
  });

  it("redactUrlsDeep keeps keys (Bull Board's own fields) and masks every string", () => {
    expect(redactUrlsDeep({ failedReason: "at https://u:p@h/x", stacktrace: ["Error: https://tok@h/y"], token: 1 })).toEqual({
      failedReason: "at https://u:***@h/x",
      stacktrace: ["Error: https://***@h/y"],
      token: 1,
    });
  });
});
