/**
 * Which hosts tc-ingest and the artifact links may talk to: the hosts of the
 * configured deployments' root URLs (TASKCLUSTER_ROOT_URL, TC_EXTRA_SOURCES)
 * and the storage hosts their Queue APIs redirect artifact downloads to
 * (TC_ARTIFACT_HOSTS). Everything else, including wherever a `reference`
 * artifact (a URL chosen by the task that uploaded it) points, is refused.
 *
 * http is accepted only on the way to and from a deployment whose root URL
 * is itself http (local stand-ins, tests); real deployments are https only.
 */
import type { Config } from "../core/config.ts";
import { trimTrailingSlashes } from "../core/urls.ts";
import { type HostPolicy, refusal } from "./guarded-fetch.ts";

export class TaskclusterHosts {
  /** Configured root URLs, without trailing slash. */
  readonly rootUrls: readonly string[];
  private readonly rootHosts: string[];

  constructor(
    rootUrls: readonly string[],
    readonly artifactHosts: readonly string[],
  ) {
    this.rootUrls = rootUrls.map(trimTrailingSlashes);
    // A root URL's host counts on any port, as ALLOWED_HOSTS entries without a port do.
    this.rootHosts = this.rootUrls.map((url) => new URL(url).hostname.toLowerCase());
  }

  static fromConfig(taskcluster: Pick<Config["taskcluster"], "rootUrl" | "extraSources" | "artifactHosts">): TaskclusterHosts {
    return new TaskclusterHosts([taskcluster.rootUrl, ...taskcluster.extraSources.map((source) => source.rootUrl)], taskcluster.artifactHosts);
  }

  /** Whether the root URL is one of the configured deployments. */
  isConfiguredRoot(rootUrl: string): boolean {
    return this.rootUrls.includes(trimTrailingSlashes(rootUrl));
  }

  /** The policy for requests of one deployment and the downloads it redirects to. */
  policyFor(rootUrl: string): HostPolicy {
    return {
      hosts: [...this.rootHosts, ...this.artifactHosts],
      describe: "the Taskcluster hosts (the root URLs' hosts and TC_ARTIFACT_HOSTS)",
      allowHttp: new URL(rootUrl).protocol === "http:",
    };
  }

  /** The policy for a URL on a deployment's host (e.g. a stored getArtifact URL), or undefined if it is on none. */
  policyForApiUrl(url: string): HostPolicy | undefined {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return undefined;
    }
    const root = this.rootUrls.find(
      (rootUrl) => new URL(rootUrl).hostname.toLowerCase() === parsed.hostname.toLowerCase() && new URL(rootUrl).protocol === parsed.protocol,
    );
    if (!root) return undefined;
    const policy = this.policyFor(root);
    return refusal(policy, parsed) ? undefined : policy;
  }
}
