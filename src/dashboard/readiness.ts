/**
 * /readyz: can this process do its work? Redis (BullMQ), PostgreSQL and every
 * Pulse broker are probed concurrently, each with a timeout; the answer names
 * the dependencies that failed and why (never with credentials).
 */

import type { RedisClient } from "../core/redis.ts";
import type { Database } from "../storage/prisma.ts";
import { type BrokerProbe, withTimeout } from "./broker-probe.ts";
import { redactText } from "./redact-secrets.ts";

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: true } | { ok: false; error: string }>;
}

export interface ReadinessDependencies {
  redis: RedisClient;
  db: Database;
  /** One probe per broker connection, by connection name ("pulse", extra sources). */
  brokers: Map<string, BrokerProbe>;
}

export async function checkReadiness({ redis, db, brokers }: ReadinessDependencies): Promise<ReadinessReport> {
  const probes: Array<[string, () => Promise<unknown>]> = [
    ["redis", () => redis.ping()],
    ["postgres", () => db.$queryRaw`SELECT 1`],
    ...[...brokers].map(([name, probe]): [string, () => Promise<unknown>] => [name === "pulse" ? "broker" : `broker:${name}`, () => probe.ping()]),
  ];
  const results = await Promise.all(
    probes.map(async ([name, probe]) => {
      try {
        await withTimeout(name, probe());
        return [name, { ok: true as const }] as const;
      } catch (error) {
        return [name, { ok: false as const, error: redactText((error as Error)?.message ?? String(error)).slice(0, 300) }] as const;
      }
    }),
  );
  return { ready: results.every(([, result]) => result.ok), checks: Object.fromEntries(results) };
}
