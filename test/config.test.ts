import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, ConfigError, loadConfig, pulseFeeds, redactUrl } from "../src/core/config.ts";

describe("configuration", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig({});
    expect(config.pulse.user).toBe("guest");
    expect(config.pulse.queuePrefix).toBe("queue/guest/pulse-bridge");
    expect(config.pulse.tcRoute).toBe("project.l10n.elmo.v1");
    expect(config.pulse.exchanges.hgpushes).toBe("exchange/hgpushes/v2");
    expect(config.taskcluster.rootUrl).toBe("https://firefox-ci-tc.services.mozilla.com");
    expect(config.clones.allowedHosts).toEqual(["hg.mozilla.org", "github.com"]);
    expect(config.dashboard).toMatchObject({ port: 3000, host: "127.0.0.1", user: undefined });
    expect(config.hgSync.reconcileIntervalMs).toBe(10 * 60 * 1000);
    expect(config.database.poolSize).toBe(10);
  });

  it("derives Pulse queue names from PULSE_USER, with one queue per feed and extra source", () => {
    const config = loadConfig({
      PULSE_URL: "amqps://pulse.mozilla.org:5671",
      PULSE_USER: "elmo",
      PULSE_PASSWORD: "s3cret",
      TC_EXTRA_SOURCES: JSON.stringify([
        { name: "community", pulseUrl: "amqps://ctc:pw@pulse.mozilla.org:5671/communitytc", rootUrl: "https://community-tc.services.mozilla.com/" },
      ]),
    });
    expect(pulseFeeds(config).map((f) => f.queue)).toEqual([
      "queue/elmo/pulse-bridge/v2/hgpushes",
      "queue/elmo/pulse-bridge/v2/github",
      "queue/elmo/pulse-bridge/v2/taskcluster",
      "queue/ctc/pulse-bridge/v2/taskcluster-community",
    ]);
    // The classic queues of earlier versions, drained and deleted on start.
    expect(pulseFeeds(config).map((f) => f.legacyQueue)).toEqual([
      "queue/elmo/pulse-bridge/hgpushes",
      "queue/elmo/pulse-bridge/github",
      "queue/elmo/pulse-bridge/taskcluster",
      "queue/ctc/pulse-bridge/taskcluster-community",
    ]);
    // One poison queue per user (and connection), fed by its own dead-letter exchange.
    expect(pulseFeeds(config).map((f) => [f.poisonExchange, f.poisonQueue])).toEqual([
      ...Array(3).fill(["exchange/elmo/pulse-bridge/poison", "queue/elmo/pulse-bridge/poison"]),
      ["exchange/ctc/pulse-bridge/poison", "queue/ctc/pulse-bridge/poison"],
    ]);
    expect(pulseFeeds(config)[3]!.rootUrl).toBe("https://community-tc.services.mozilla.com");
    expect(config.pulse.url).toBe("amqps://elmo:s3cret@pulse.mozilla.org:5671");
  });

  it.each([
    ["PULSE_PREFETCH", "0", /PULSE_PREFETCH: must be at least 1/],
    ["PULSE_PREFETCH", "lots", /PULSE_PREFETCH: must be a whole number/],
    ["PULSE_MAX_LENGTH", "-5", /PULSE_MAX_LENGTH/],
    ["REDIS_URL", "http://localhost", /REDIS_URL: must be a URL with scheme redis: or rediss:/],
    ["RECONCILE_INTERVAL", "soon", /RECONCILE_INTERVAL: must be a duration/],
    ["TC_EXTRA_SOURCES", "{", /TC_EXTRA_SOURCES: must be a JSON array/],
    ["ALLOWED_HOSTS", "evil host", /ALLOWED_HOSTS/],
    ["DATABASE_POOL_SIZE", "0", /DATABASE_POOL_SIZE: must be at least 1/],
    ["REDIS_DURABILITY", "replicas:0", /REDIS_DURABILITY: must be memory, fsync or replicas:N/],
    ["REDIS_DURABILITY", "disk", /REDIS_DURABILITY: must be memory, fsync or replicas:N/],
  ])("names the bad variable %s=%s", (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it("reads REDIS_DURABILITY: fsync unless told otherwise", () => {
    expect(loadConfig({}).redis.durability).toEqual({ mode: "fsync", replicas: 0, waitTimeoutMs: 2000, unchecked: false });
    expect(loadConfig({ REDIS_DURABILITY: "replicas:2", REDIS_WAIT_TIMEOUT: "500ms", REDIS_DURABILITY_UNCHECKED: "true" }).redis.durability).toEqual({
      mode: "replicas",
      replicas: 2,
      waitTimeoutMs: 500,
      unchecked: true,
    });
  });

  it("finds Redis through Sentinel or a Cluster when told, and keeps Cluster keys of one queue in one slot", () => {
    expect(loadConfig({}).redis.topology).toEqual({ kind: "single" });
    expect(loadConfig({ REDIS_SENTINELS: "10.0.0.1:26379, sentinel-b:26380", REDIS_SENTINEL_MASTER: "bullmq" }).redis.topology).toEqual({
      kind: "sentinel",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "sentinel-b", port: 26380 },
      ],
      master: "bullmq",
      password: undefined,
    });
    const cluster = loadConfig({ REDIS_CLUSTER_NODES: "127.0.0.1:7000,127.0.0.1:7001" });
    expect(cluster.redis.topology).toEqual({
      kind: "cluster",
      nodes: [
        { host: "127.0.0.1", port: 7000 },
        { host: "127.0.0.1", port: 7001 },
      ],
    });
    // Unset, the prefix becomes a hash tag; set without one, it is refused rather than silently renamed.
    expect(cluster.redis.prefix).toBe("{bull}");
    expect(loadConfig({ REDIS_CLUSTER_NODES: "127.0.0.1:7000", BULLMQ_PREFIX: "{elmo}" }).redis.prefix).toBe("{elmo}");
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "127.0.0.1:7000", BULLMQ_PREFIX: "elmo" })).toThrow(
      /BULLMQ_PREFIX: must be a \{hash tag\} on Redis Cluster, e\.g\. \{elmo\}/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "127.0.0.1:7000", REDIS_SENTINELS: "127.0.0.1:26379" })).toThrow(
      /cannot be set together with REDIS_SENTINELS/,
    );
    expect(() => loadConfig({ REDIS_SENTINELS: "127.0.0.1" })).toThrow(/REDIS_SENTINELS: must be a comma-separated list of host:port/);
    expect(() => loadConfig({ BULLMQ_PREFIX: "{a}b" })).toThrow(/BULLMQ_PREFIX/);
  });

  it("never puts a secret into an error", () => {
    const attempt = () => loadConfig({ DATABASE_URL: "mysql://admin:hunter2@db/x" });
    expect(attempt).toThrow(/DATABASE_URL/);
    try {
      attempt();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain("hunter2");
    }
    expect(redactUrl("amqps://elmo:s3cret@pulse.mozilla.org:5671")).toBe("amqps://elmo:***@pulse.mozilla.org:5671");
  });

  it("requires the dashboard credentials together", () => {
    expect(() => loadConfig({ DASHBOARD_USER: "ops" })).toThrow(/DASHBOARD_PASSWORD/);
  });

  it("reads the environment only through its table of variables, and reads every one", () => {
    const asked = new Set<string>();
    const recording = new Proxy({} as Record<string, string | undefined>, {
      get: (_target, name) => {
        if (typeof name === "string") asked.add(name);
        return undefined;
      },
    });
    loadConfig(recording);
    expect([...asked].sort()).toEqual(CONFIG_VARIABLES.map((v) => v.name).sort());
  });

  it("documents every variable with its default and meaning, as the code declares them, in the README's configuration table", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("\n## ", readme.indexOf("## Configuration") + 1));
    const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| `([^`]*)` \| (.*?) \|$/gm)].map(([, name, value, meaning]) => ({ name, default: value, meaning }));
    expect(rows).toEqual(CONFIG_VARIABLES);
  });
});
