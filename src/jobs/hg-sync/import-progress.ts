/**
 * Progress of one sync while it stores history, for the people watching a
 * long import (a first import can hold a million changesets):
 *
 * - the job's progress in Bull Board (`job.updateProgress`), at most once a
 *   second: `{ changesetsStored, alreadyStored, total?, percent?, rate, etaSeconds? }`;
 * - a pino line "import progress" at most every 10 s, with the rate
 *   (changesets/s), the ETA and the process's memory (rssMb, heapUsedMb, heapTotalMb, externalMb);
 * - the counter pulse_bridge_hg_sync_changesets_stored_total{kind}.
 *
 * `total` is what the tool counted cheaply before the work started (the
 * revisions the clone holds that the repository lacks); without it there is
 * no percent and no ETA.
 */
import type { Logger } from "../../core/log.ts";
import type { VcsKind } from "../../vcs/backend.ts";
import { changesetsStored } from "./metrics.ts";

export interface ProgressData {
  changesetsStored: number;
  /** Changesets found stored already (an interrupted import resuming). */
  alreadyStored: number;
  total?: number;
  percent?: number;
  /** Changesets stored per second since the sync started storing. */
  rate: number;
  etaSeconds?: number;
}

const JOB_EVERY_MS = 1_000;
const LOG_EVERY_MS = 10_000;

/** The worker's memory in the log line: an import must not grow it (README, "Real sizes"). */
function memory(): { rssMb: number; heapUsedMb: number; heapTotalMb: number; externalMb: number } {
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const mb = (bytes: number) => Math.round(bytes / 1048576);
  return { rssMb: mb(rss), heapUsedMb: mb(heapUsed), heapTotalMb: mb(heapTotal), externalMb: mb(external) };
}

export class ImportProgress {
  private stored = 0;
  private known = 0;
  private total: number | undefined;
  private readonly started = Date.now();
  private lastJobUpdate = 0;
  private lastLog = Date.now();
  private resumeNoted = false;

  constructor(
    private readonly kind: VcsKind,
    private readonly log: Logger,
    private readonly report: ((data: ProgressData) => Promise<unknown>) | undefined,
  ) {}

  /** The number of changesets this sync expects to store, when the tool can tell. */
  expect(total: number | undefined): void {
    this.total = total;
  }

  /**
   * Before storing a batch whose first new revision is `firstNew`: when whole
   * batches were found stored before anything new (an earlier run, killed or
   * timed out, committed them), logs once where this sync takes over.
   */
  resumingAt(firstNew: string, known: number, batchSize: number): void {
    const alreadyStored = this.known + known;
    if (this.resumeNoted || this.stored > 0 || alreadyStored < batchSize) return;
    this.resumeNoted = true;
    this.log.info({ alreadyStored, from: firstNew }, `resuming from ${firstNew.slice(0, 12)}: ${alreadyStored} changesets stored already`);
  }

  /** A batch was examined: `fresh` stored now, `known` found stored already. */
  advance(fresh: number, known: number): void {
    this.stored += fresh;
    this.known += known;
    if (fresh) changesetsStored.inc({ kind: this.kind }, fresh);
    const now = Date.now();
    if (now - this.lastLog >= LOG_EVERY_MS) {
      this.lastLog = now;
      this.log.info({ ...this.data(now), ...memory() }, "import progress");
    }
    if (this.report && now - this.lastJobUpdate >= JOB_EVERY_MS) {
      this.lastJobUpdate = now;
      // Progress is advisory: a failed update (Redis hiccup) must not fail the import.
      this.report(this.data(now)).catch(() => {});
    }
  }

  /** The last word: reported at once when anything was examined, and logged if the sync took long enough to log progress. */
  async finish(): Promise<void> {
    if (this.stored === 0 && this.known === 0) return;
    const now = Date.now();
    if (now - this.started >= LOG_EVERY_MS) this.log.info({ ...this.data(now), ...memory() }, "import progress");
    await this.report?.(this.data(now)).catch(() => {});
  }

  data(now = Date.now()): ProgressData {
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = Math.round(this.stored / seconds);
    const data: ProgressData = { changesetsStored: this.stored, alreadyStored: this.known, rate };
    if (this.total !== undefined && this.total > 0) {
      data.total = this.total;
      data.percent = Math.min(100, Math.floor((this.stored / this.total) * 1000) / 10);
      if (rate > 0) data.etaSeconds = Math.max(0, Math.round((this.total - this.stored) / rate));
    }
    return data;
  }
}
