/**
 * Masks secrets in text that leaves the process (dead letters, logs, the
 * dashboard): credentials inside URLs, wherever they appear. Pulse senders
 * are not trusted, so a URL with a token in its user part (`https://ghp_x@github.com`)
 * is as likely as `user:password@`.
 */

export const REDACTED = "***";

// `scheme://user:password@` and `scheme://token@` (no '/', '@' or whitespace inside).
const URL_USER_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@?#]+):([^\s@/?#]*)@/gi;
const URL_USER_ONLY = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@?#]+)@/gi;

export function redactText(text: string): string {
  return text
    .replace(URL_USER_PASSWORD, (_whole, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(URL_USER_ONLY, (whole, scheme: string, user: string) => (user === REDACTED ? whole : `${scheme}${REDACTED}@`));
}

/** True when the text holds a URL with a user part (credentials or a token). */
export function hasUrlCredentials(text: string): boolean {
  URL_USER_PASSWORD.lastIndex = 0;
  URL_USER_ONLY.lastIndex = 0;
  return URL_USER_PASSWORD.test(text) || URL_USER_ONLY.test(text);
}
