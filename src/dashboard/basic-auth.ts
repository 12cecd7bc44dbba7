/**
 * HTTP basic authentication for the dashboard's operator actions.
 *
 * Credentials are compared in constant time: both sides are hashed first, so
 * neither their content nor their length leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";

const AUTH_REALM = "pulse-bridge dashboard";

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Decodes an `Authorization: Basic ...` header; undefined when absent or malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function credentialsMatch(given: { user: string; password: string } | undefined, user: string, password: string): boolean {
  const candidate = given ?? { user: "", password: "" };
  // Evaluate both comparisons always: no early exit on a wrong user name.
  const userOk = timingSafeEqual(digest(candidate.user), digest(user));
  const passwordOk = timingSafeEqual(digest(candidate.password), digest(password));
  return given !== undefined && userOk && passwordOk;
}

/** Answers 401 with a challenge unless the request carries the right credentials. */
export function requireBasicAuth(user: string, password: string): RequestHandler {
  return (request, response, next) => {
    if (credentialsMatch(parseBasicAuth(request.headers.authorization), user, password)) return next();
    response.setHeader("WWW-Authenticate", `Basic realm="${AUTH_REALM}", charset="UTF-8"`);
    response.status(401).json({ error: "authentication required" });
  };
}
