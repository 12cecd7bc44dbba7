/**
 * GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the
 * HMAC-SHA256 of the raw request body keyed with the webhook's secret
 * (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
 * Checked on the bytes as received, before anything is parsed, and compared
 * in constant time so that the answer's timing tells a forger nothing.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-hub-signature-256";

export function sign(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** "missing" (no header), "bad" (wrong form or wrong signature) or "valid". */
export function checkSignature(secret: string, body: Buffer, header: string | string[] | undefined): "missing" | "bad" | "valid" {
  if (header === undefined || header === "") return "missing";
  if (Array.isArray(header)) return "bad";
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!match) return "bad";
  const expected = createHmac("sha256", secret).update(body).digest();
  const given = Buffer.from(match[1]!, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected) ? "valid" : "bad";
}
