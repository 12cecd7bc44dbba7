/** The Queue API of each configured Taskcluster deployment answers its ping. */
import type { Config } from "../core/config.ts";
import { type CheckResult, reason, result } from "./check.ts";

const NEEDED_BY = ["worker tc-ingest", "dashboard"];

async function ping(name: string, rootUrl: string, timeoutMs: number): Promise<CheckResult> {
  const url = `${rootUrl}/api/queue/v1/ping`;
  const check = `taskcluster ${name}`;
  const fix = name === "pulse" ? "check TASKCLUSTER_ROOT_URL and the network (proxy, DNS)" : "check the rootUrl of this TC_EXTRA_SOURCES entry and the network";
  try {
    const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel().catch(() => {});
    if (!response.ok) return result(check, NEEDED_BY, "fail", `${url} answered ${response.status}`, fix);
    return result(check, NEEDED_BY, "ok", `${url} answered ${response.status}`);
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    const why = (error as Error).name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : reason(cause ?? error);
    return result(check, NEEDED_BY, "fail", `${url}: ${why}`, fix);
  }
}

export function checkTaskcluster(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const roots = [{ name: "pulse", rootUrl: config.taskcluster.rootUrl }, ...config.taskcluster.extraSources.map((s) => ({ name: s.name, rootUrl: s.rootUrl }))];
  return Promise.all(roots.map((root) => ping(root.name, root.rootUrl, Math.min(timeoutMs, config.taskcluster.requestTimeoutMs))));
}
