/**
 * Failure classes, decided once where the failure is understood:
 * - PermanentJobError: retrying cannot help (bad payload, schema error, refused
 *   URL, 404). BullMQ fails the job at once, whatever attempts remain.
 * - anything else thrown is transient (network, 5xx, timeouts) and retried
 *   with the queue's backoff.
 */
import { UnrecoverableError } from "bullmq";

export class PermanentJobError extends UnrecoverableError {
  override name = "PermanentJobError";
}
