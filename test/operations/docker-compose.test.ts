/**
 * docker-compose.yml and the Dockerfile, checked offline (no Docker engine
 * runs here): Debian's docker-compose validates the file against its schema.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

function compose(...args: string[]) {
  return composeFiles(["docker-compose.yml"], ...args);
}

function composeFiles(files: string[], ...args: string[]) {
  // A clean environment: the file's defaults, not whatever the shell exports.
  return spawnSync("docker-compose", [...files.flatMap((file) => ["-f", file]), ...args], {
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
    // The heap settings npm run soak (tc-ingest) and npm run bench:scale (hg-sync) measured the workers with.
    expect(resolved).toContain("NODE_OPTIONS: --max-old-space-size=1024 --max-semi-space-size=8");
    expect(resolved).toContain("NODE_OPTIONS: --max-old-space-size=256 --max-semi-space-size=4");
    // Workers must stay scalable: no fixed container names or host ports.
    expect(resolved).not.toContain("container_name");
  });

  it("the several-machines file adds Sentinel and PgBouncer, and every role but migrate goes through them", () => {
    const files = ["docker-compose.yml", "docker-compose.several-machines.yml"];
    const check = composeFiles(files, "config", "-q");
    expect(check.status, check.stderr).toBe(0);
    const services = composeFiles(files, "config", "--services").stdout.split("\n").filter(Boolean);
    expect(services).toEqual(expect.arrayContaining(["redis-replica", "redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3", "pgbouncer"]));
    const resolved = composeFiles(files, "config").stdout;
    // One block per service: what follows its name up to the next service.
    const block = (service: string) => resolved.split(/\n {2}(?=[a-z0-9-]+:\n)/).find((b) => b.startsWith(`${service}:\n`)) ?? "";
    for (const role of ["bridge", "hg-sync", "tc-ingest", "dashboard"]) {
      expect(block(role), role).toContain("REDIS_SENTINELS: redis-sentinel-1:26379,redis-sentinel-2:26379,redis-sentinel-3:26379");
      expect(block(role), role).toContain("DATABASE_URL: postgresql://pulse:pulse@pgbouncer:5432/pulse_bridge");
      // Through Sentinel only a replica's copy survives a failover.
      expect(block(role), role).toContain("REDIS_DURABILITY: replicas:1");
    }
    // Migrations take an advisory lock for the session: never through a transaction-mode bouncer.
    expect(block("migrate")).toContain("DATABASE_URL: postgresql://pulse:pulse@postgres:5432/pulse_bridge");
    expect(block("pgbouncer")).toContain("POOL_MODE: transaction");
    // Both data servers fsync every write too.
    for (const server of ["redis", "redis-replica"]) expect(block(server), server).toMatch(/--appendfsync\s*\n\s*- always/);
    expect(block("redis-sentinel-1")).toContain("sentinel monitor pulse-bridge redis 6379 2");
  });

  it("builds a non-root Node 24 image with Mercurial and git", () => {
    const dockerfile = readFileSync("Dockerfile", "utf8");
    expect(dockerfile).toMatch(/^FROM node:24/m);
    expect(dockerfile).toMatch(/apt-get install[^\n]*mercurial[^\n]*git/);
    expect(dockerfile).toContain("npm ci");
    expect(dockerfile).toMatch(/^USER (?!root)\S+/m);
  });
});
