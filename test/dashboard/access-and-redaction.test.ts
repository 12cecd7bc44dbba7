/** The dashboard's building blocks that guard secrets: basic-auth parsing/comparison and redaction of rendered job data. */
import { describe, expect, it } from "vitest";
import { credentialsMatch, parseBasicAuth } from "../../src/dashboard/basic-auth.ts";
import { redactSecrets } from "../../src/dashboard/redact-secrets.ts";

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
