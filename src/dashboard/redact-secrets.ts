/**
 * Removes secrets from what the dashboard renders (Bull Board's job data).
 *
 * Jobs carry the original Pulse message, including its AMQP headers; by
 * design none of it is secret, but a publisher could put a token in a header
 * or a URL with credentials in a body. Values under secret-sounding keys are
 * replaced, and credentials inside URLs are masked, wherever they appear.
 */
const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|credential|api[-_]?key|signature/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]+):([^\s@/]+)@/gi;

export const REDACTED = "***";

export function redactText(text: string): string {
  return text.replace(URL_CREDENTIALS, (_whole, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`);
}

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
