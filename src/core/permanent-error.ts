/**
 * Failure classes, decided once where the failure is understood:
 * - PermanentError: retrying cannot help (bad payload, schema error, refused
 *   URL or host, 404). The pool runner (src/jobs/start-pool.ts) hands it to
 *   BullMQ as an UnrecoverableError, which fails the job at once whatever
 *   attempts remain; the layers below the pools stay free of BullMQ.
 * - anything else thrown is transient (network, 5xx, timeouts) and retried
 *   with the queue's backoff.
 */
export class PermanentError extends Error {
  override name = "PermanentError";
}
