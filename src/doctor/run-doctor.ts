/**
 * `pulse-bridge doctor`: every check a role needs, concurrently, each group
 * bounded in time, one line per check with what to do when it fails. A
 * failure (`fail`) means some role cannot work; warnings do not fail the run.
 */
import type { Config } from "../core/config.ts";
import { type CheckResult, type CheckStatus, reason, result, withTimeout } from "./check.ts";
import { checkClones } from "./clones.ts";
import { checkPostgres } from "./postgres.ts";
import { checkRabbitMq } from "./rabbitmq.ts";
import { checkRedis } from "./redis.ts";
import { checkTaskcluster } from "./taskcluster.ts";
import { checkNode, checkTools } from "./tools.ts";

export interface DoctorReport {
  ok: boolean;
  counts: Record<CheckStatus, number>;
  checks: CheckResult[];
}

export interface DoctorOptions {
  /** Time one connection or request may take. */
  timeoutMs?: number;
}

export async function runDoctor(config: Config, options: DoctorOptions = {}): Promise<DoctorReport> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  // A group that overruns (a half-open socket, a hung tool) becomes one failed line instead of a hang.
  const groupTimeoutMs = timeoutMs * 3;
  const group = (name: string, neededBy: string[], run: () => Promise<CheckResult[]>) =>
    withTimeout(name, run(), groupTimeoutMs).catch((error: unknown) => [result(name, neededBy, "fail" as const, reason(error))]);
  const groups = await Promise.all([
    Promise.resolve([checkNode()]),
    group("tools", ["worker hg-sync", "dashboard"], checkTools),
    group("postgres", ["worker hg-sync", "worker tc-ingest", "dashboard", "webhook", "track"], () => checkPostgres(config, timeoutMs)),
    group("redis", ["bridge", "worker hg-sync", "worker tc-ingest", "dashboard", "webhook", "replay", "track"], () => checkRedis(config, timeoutMs)),
    group("rabbitmq", ["bridge", "replay"], () => checkRabbitMq(config, timeoutMs)),
    group("clones", ["worker hg-sync", "dashboard"], () => checkClones(config, timeoutMs * 2)),
    group("taskcluster", ["worker tc-ingest", "dashboard"], () => checkTaskcluster(config, timeoutMs)),
  ]);
  const checks = groups.flat();
  const counts: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const check of checks) counts[check.status]++;
  return { ok: counts.fail === 0, counts, checks };
}

const LABEL: Record<CheckStatus, string> = { ok: "ok", warn: "WARN", fail: "FAIL", skip: "skip" };

/** One line per check, then a summary: `status  check  detail  → fix`. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.check.length));
  const lines = report.checks.map(
    (c) => `${LABEL[c.status].padEnd(4)}  ${c.check.padEnd(width)}  ${c.detail}${c.fix && c.status !== "ok" ? `  → ${c.fix}` : ""}`,
  );
  const { ok, warn, fail, skip } = report.counts;
  lines.push(
    `${fail ? "something a role needs is wrong" : "every role has what it needs"}: ${ok} ok, ${warn} warning(s), ${fail} failed${skip ? `, ${skip} not checked` : ""}`,
  );
  return lines.join("\n");
}
