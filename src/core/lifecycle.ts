/**
 * Ordered, idempotent shutdown for the long-running roles.
 *
 * Each resource registers its release as it is opened; `shutdown()` releases
 * them in reverse order (consumer before queues, queues before Redis, ...).
 * Calling it twice returns the same promise. The first SIGTERM/SIGINT drains;
 * a second one, or the deadline passing, forces exit 1.
 */
import type { Logger } from "./log.ts";

const SHUTDOWN_DEADLINE_MS = 25_000;

export class Lifecycle {
  private readonly releases: Array<{ name: string; release: () => unknown }> = [];
  private closing: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly log: Logger) {}

  /** Aborted when shutdown begins: long operations watch it to stop taking work. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get isShuttingDown(): boolean {
    return this.closing !== undefined;
  }

  /** Registers a release, run in reverse order of registration. */
  defer(name: string, release: () => unknown): void {
    this.releases.push({ name, release });
  }

  shutdown(reason = "requested"): Promise<void> {
    this.closing ??= (async () => {
      this.log.info({ reason }, "shutting down");
      this.abort.abort();
      for (const { name, release } of [...this.releases].reverse()) {
        try {
          await release();
        } catch (error) {
          this.log.warn({ err: error, resource: name }, "release failed during shutdown");
        }
      }
      this.log.info("shut down");
    })();
    return this.closing;
  }

  /** SIGTERM/SIGINT: drain and exit 0; a second signal or the deadline: exit 1. */
  handleSignals(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.closing) {
        this.log.warn({ signal }, "second signal: forcing exit");
        process.exit(1);
      }
      const timer = setTimeout(() => {
        this.log.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, "shutdown deadline passed: forcing exit");
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      timer.unref();
      void this.shutdown(signal).then(() => process.exit(0));
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
}
