/**
 * docker-compose.yml and the Dockerfile, checked offline (no Docker engine
 * runs here): Debian's docker-compose validates the file against its schema.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

function compose(...args: string[]) {
  // A clean environment: the file's defaults, not whatever the shell exports.
  return spawnSync("docker-compose", ["-f", "docker-compose.yml", ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    timeout: 30_000,
  });
}

describe("Docker deployment", () => {
  it("docker-compose config -q accepts the file", () => {
    const result = compose("config", "-q");
    expect(result.status, result.stderr).toBe(0);
  });

  it("has every service, Redis set up for BullMQ, health checks and ordered start-up", () => {
    const services = compose("config", "--services").stdout.split("\n").filter(Boolean).sort();
    expect(services).toEqual(["bridge", "dashboard", "hg-sync", "migrate", "postgres", "rabbitmq", "redis", "tc-ingest"]);
    const resolved = compose("config").stdout;
    expect(resolved).toMatch(/--appendonly\s*\n\s*- "?yes"?/);
    // What the bridge's REDIS_DURABILITY=fsync needs (test/bridge/redis-durability.test.ts).
    expect(resolved).toMatch(/--appendfsync\s*\n\s*- always/);
    expect(resolved).toMatch(/REDIS_DURABILITY: fsync/);
    expect(resolved).toMatch(/--maxmemory-policy\s*\n\s*- noeviction/);
    expect(resolved).toContain("service_completed_successfully");
    expect(resolved).toContain("service_healthy");
    expect(resolved).toContain("rabbitmq:4-management");
    expect(resolved.match(/healthcheck:/g)?.length).toBeGreaterThanOrEqual(4);
    // Workers must stay scalable: no fixed container names or host ports.
    expect(resolved).not.toContain("container_name");
  });

  it("builds a non-root Node 24 image with Mercurial and git", () => {
    const dockerfile = readFileSync("Dockerfile", "utf8");
    expect(dockerfile).toMatch(/^FROM node:24/m);
    expect(dockerfile).toMatch(/apt-get install[^\n]*mercurial[^\n]*git/);
    expect(dockerfile).toContain("npm ci");
    expect(dockerfile).toMatch(/^USER (?!root)\S+/m);
  });
});
