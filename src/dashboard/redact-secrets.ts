/**
 * Removes secrets from what the dashboard renders: Bull Board's job data,
 * return values, failure reasons and stack traces, job logs, and the job
 * history of /api/jobs.
 *
 * Jobs carry the original Pulse message, including its AMQP headers; by
 * design none of it is secret, but a publisher could put a token in a header
 * or a URL with credentials in a body, and an error message can quote such a
 * URL. Values under secret-sounding keys are replaced, and credentials inside
 * URLs are masked, wherever they appear.
 */
import { REDACTED, redactText } from "../core/redact.ts";

export { REDACTED, redactText };

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|credential|api[-_]?key|signature/i;

export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 20) return REDACTED;
  if (typeof value === "string") return redactText(value);
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, SECRET_KEY.test(key) ? REDACTED : redactSecrets(item, depth + 1)]),
    );
  }
  return value;
}

/**
 * Credentials in URLs masked in every string of a JSON value, keys kept:
 * for whole API responses (Bull Board's), whose own field names must not be
 * mistaken for secrets.
 */
export function redactUrlsDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (depth > 40) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactUrlsDeep(item, depth + 1));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, redactUrlsDeep(item, depth + 1)]));
  }
  return value;
}
