/**
 * Taskcluster task ids for the stand-ins' tasks. Real ones come from
 * slugid.nice(): a v4 UUID in url-safe base64 with the first bit cleared (so
 * no id starts with `-`), which is what the bridge's message schema checks
 * for (src/routing/message-schemas.ts), so ids made here pass it.
 */
import { randomBytes } from "node:crypto";

export function slugid(): string {
  const bytes = randomBytes(16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("base64url").slice(0, 22);
}
