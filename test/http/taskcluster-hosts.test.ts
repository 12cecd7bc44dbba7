/** Which hosts the Taskcluster host policy admits, with the default configuration and TC_ARTIFACT_HOSTS. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/core/config.ts";
import { refusal } from "../../src/http/guarded-fetch.ts";
import { TaskclusterHosts } from "../../src/http/taskcluster-hosts.ts";

const FIREFOX_CI = "https://firefox-ci-tc.services.mozilla.com";

describe("Taskcluster hosts", () => {
  const defaults = TaskclusterHosts.fromConfig(
    loadConfig({
      TC_EXTRA_SOURCES: JSON.stringify([
        { name: "community", pulseUrl: "amqps://u:p@pulse.mozilla.org:5671/communitytc", rootUrl: "https://community-tc.services.mozilla.com/" },
      ]),
    }).taskcluster,
  );
  const check = (url: string, root = FIREFOX_CI) => refusal(defaults.policyFor(root), new URL(url)) ?? "allowed";

  it("admits by default where Firefox-CI's getArtifact redirects public artifacts, GCS, and the deployments' own hosts", () => {
    // The Location of getArtifact's 303 on Firefox-CI (formats/taskcluster-queue-api/get-artifact.303.http.assembled.txt).
    expect(check("https://firefoxci.taskcluster-artifacts.net/fUAqRKDUTcuyE96IFj1oXw/0/public/compare-locales/elmo.json")).toBe("allowed");
    expect(check("https://storage.googleapis.com/some-bucket/fUAqRKDUTcuyE96IFj1oXw/0/public/elmo.json?X-Goog-Signature=x")).toBe("allowed");
    expect(check("https://firefox-ci-tc.services.mozilla.com/api/queue/v1/task/x/artifacts/public%2Felmo.json")).toBe("allowed");
    expect(check("https://community-tc.services.mozilla.com/api/queue/v1/task/x")).toBe("allowed");
  });

  it("refuses look-alikes, other schemes, http from an https deployment, and credentials", () => {
    const notOne = /is not one of the Taskcluster hosts/;
    expect(check("https://taskcluster-artifacts.net/x")).toMatch(notOne); // *.domain: subdomains only
    expect(check("https://firefoxci.taskcluster-artifacts.net.evil.example/x")).toMatch(notOne);
    expect(check("https://eviltaskcluster-artifacts.net/x")).toMatch(notOne);
    expect(check("https://169.254.169.254/latest/meta-data/")).toMatch(notOne);
    expect(check("http://firefoxci.taskcluster-artifacts.net/x")).toBe("scheme http: is not allowed");
    expect(check("file:///etc/passwd")).toBe("scheme file: is not allowed");
    expect(check("https://user:pw@storage.googleapis.com/x")).toBe("credentials in URLs are not accepted");
  });

  it("knows the configured deployments, and which stored API URLs belong to one", () => {
    expect(defaults.isConfiguredRoot(`${FIREFOX_CI}/`)).toBe(true);
    expect(defaults.isConfiguredRoot("https://community-tc.services.mozilla.com")).toBe(true);
    expect(defaults.isConfiguredRoot("https://tc.evil.example")).toBe(false);
    expect(defaults.policyForApiUrl(`${FIREFOX_CI}/api/queue/v1/task/x/runs/0/artifacts/public%2Fa.json`)).toBeDefined();
    expect(defaults.policyForApiUrl("https://tc.evil.example/api/queue/v1/task/x/runs/0/artifacts/a")).toBeUndefined();
    expect(defaults.policyForApiUrl(`http://firefox-ci-tc.services.mozilla.com/api/queue/v1/task/x`)).toBeUndefined();
  });

  it("reads TC_ARTIFACT_HOSTS: host, host:port and *.domain entries, validated", () => {
    const hosts = TaskclusterHosts.fromConfig(loadConfig({ TC_ARTIFACT_HOSTS: "Artifacts.Example.org, *.cdn.example:8443" }).taskcluster);
    const policy = hosts.policyFor(FIREFOX_CI);
    expect(refusal(policy, new URL("https://artifacts.example.org:444/x"))).toBeUndefined();
    expect(refusal(policy, new URL("https://eu.cdn.example:8443/x"))).toBeUndefined();
    expect(refusal(policy, new URL("https://eu.cdn.example/x"))).toMatch(/is not one of/);
    expect(refusal(policy, new URL("https://firefoxci.taskcluster-artifacts.net/x"))).toMatch(/is not one of/);
    expect(() => loadConfig({ TC_ARTIFACT_HOSTS: "https://cdn.example/" })).toThrow(/^TC_ARTIFACT_HOSTS: must be a comma-separated list of host names/);
    expect(() => loadConfig({ TC_ARTIFACT_HOSTS: "*" })).toThrow(/^TC_ARTIFACT_HOSTS:/);
    expect(() => loadConfig({ ELMO_JSON_MAX_BYTES: "100" })).toThrow(/^ELMO_JSON_MAX_BYTES: must be at least 1024/);
    expect(loadConfig({}).tcIngest).toMatchObject({ elmoJsonMaxBytes: 4 * 1024 * 1024, elmoJsonMaxComparisons: 5000 });
  });
});
