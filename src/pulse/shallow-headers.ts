/**
 * Makes the AMQP headers of a message safe to keep: a value nested deeper than
 * MAX_HEADER_DEPTH or larger than MAX_HEADER_BYTES is dropped and named in a
 * note header. Only the big-stack queue reader (queue-reader-thread.ts) sees
 * headers that deep; what it hands on is shallow enough for any recursive
 * code (structured clone, JSON, BullMQ) on a normal stack.
 *
 * Walks values with an explicit stack, never by recursion, so it cannot
 * overflow whatever it is given. Erasable TypeScript only: the reader thread
 * runs this file with Node's type stripping in development.
 */

/** Deeper header values are dropped (Pulse's own headers, CC lists and x-death, are 1-3 deep). */
const MAX_HEADER_DEPTH = 16;
/** Larger header values (counted as their leaves' sizes) are dropped. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** The header that names what was dropped, and why. */
export const DROPPED_HEADERS_NOTE = "x-pulse-bridge-dropped-headers";

export interface ShallowHeaders {
  headers: Record<string, unknown>;
  /** `<name> (<why>)` for each header dropped. */
  dropped: string[];
}

export function shallowHeaders(headers: Record<string, unknown> | undefined): ShallowHeaders {
  const kept: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    const problem = measure(value);
    if (problem) dropped.push(`${name} (${problem})`);
    else kept[name] = value;
  }
  if (dropped.length) kept[DROPPED_HEADERS_NOTE] = `dropped by pulse-bridge: ${dropped.join(", ")}`;
  return { headers: kept, dropped };
}

/** Why a value cannot be kept, or undefined when it can. */
function measure(value: unknown): string | undefined {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  let bytes = 0;
  while (pending.length) {
    const next = pending.pop()!;
    if (next.depth > MAX_HEADER_DEPTH) return `nested deeper than ${MAX_HEADER_DEPTH} levels`;
    const v = next.value;
    if (typeof v === "string") bytes += v.length;
    else if (v instanceof Uint8Array) bytes += v.byteLength;
    else if (v !== null && typeof v === "object") {
      for (const [key, child] of Object.entries(v)) {
        bytes += key.length;
        pending.push({ value: child, depth: next.depth + 1 });
      }
    } else bytes += 8;
    if (bytes > MAX_HEADER_BYTES) return `larger than ${MAX_HEADER_BYTES} bytes`;
  }
  return undefined;
}
