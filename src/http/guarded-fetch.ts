/**
 * HTTP downloads from hosts we do not control, under two rules:
 *
 * - Redirects are followed by hand, at most `maxRedirects` of them, and
 *   every hop's URL must pass the caller's host policy before a byte is
 *   asked of it. fetch's own following (`redirect: "follow"`) would go
 *   anywhere a Location header says (another host, http, 20 hops).
 * - A body is read as a stream and abandoned as soon as it passes a byte cap
 *   counted after Content-Encoding is undone, so a small gzip bomb cannot
 *   grow past the cap in memory. The decoding is ours (node:zlib, with
 *   backpressure): fetch()'s decoder inflates well ahead of its reader
 *   (measured: 23 MB resident to read 4 MiB of a gzip bomb, 5 MB this way),
 *   so requests go through node:http(s) rather than fetch.
 *
 * What upstream sent never becomes part of an error message: refusals and
 * failures name the status, the host and the path (no query: signed storage
 * URLs carry their signature there), nothing from a body.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable, Transform } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { PermanentError } from "../core/permanent-error.ts";
import { inSpan, tracingOn } from "../core/tracing.ts";

/** A host list entry: `host` (any port), `host:port`, or `*.domain` (any subdomain of domain). */
function hostMatches(entry: string, url: URL): boolean {
  const hostname = url.hostname.toLowerCase();
  const host = url.host.toLowerCase();
  const wildcard = entry.startsWith("*.");
  const pattern = wildcard ? entry.slice(2) : entry;
  if (pattern.includes(":")) {
    if (wildcard) return host.endsWith(`.${pattern}`);
    return host === pattern;
  }
  return wildcard ? hostname.endsWith(`.${pattern}`) : hostname === pattern;
}

export interface HostPolicy {
  /** Host list entries (see hostMatches). */
  hosts: readonly string[];
  /** Which list that is, for refusals ("ALLOWED_HOSTS", "the Taskcluster hosts"). */
  describe: string;
  /** http is accepted only when this is set (local stand-ins); https always. */
  allowHttp: boolean;
}

/** Why `url` may not be fetched under `policy`, or undefined if it may. */
export function refusal(policy: HostPolicy, url: URL): string | undefined {
  if (url.protocol !== "https:" && !(url.protocol === "http:" && policy.allowHttp)) return `scheme ${url.protocol.slice(0, 20)} is not allowed`;
  if (url.username || url.password) return "credentials in URLs are not accepted";
  if (!policy.hosts.some((entry) => hostMatches(entry, url))) return `host ${url.host.slice(0, 255)} is not one of ${policy.describe}`;
  return undefined;
}

/** `host/path` of a URL, without query or fragment, bounded: safe for messages and logs. */
export function showUrl(url: URL): string {
  const path = url.pathname.length > 200 ? `${url.pathname.slice(0, 200)}…` : url.pathname;
  return `${url.host.slice(0, 255)}${path}`;
}

/** A redirect or URL the policy refused: permanent, retrying cannot change it. */
class RefusedRedirectError extends PermanentError {
  override name = "RefusedRedirectError";
}

export interface GuardedFetchOptions {
  policy: HostPolicy;
  /** Covers every hop and the body (abort it to give up). */
  signal: AbortSignal;
  /** What is being fetched, for messages (`artifact x of task y run 0`). */
  what: string;
  maxRedirects?: number;
  headers?: Record<string, string>;
}

export interface GuardedResponse {
  status: number;
  /** The final URL (after redirects). */
  url: URL;
  /** The raw (still encoded) body; read it with readCapped or discard it. */
  message: IncomingMessage;
}

const MAX_REDIRECTS = 5;

/**
 * GETs `url`, following redirects only to URLs the policy allows. Returns
 * the first answer that is not a redirect (any status; its body unread).
 * Throws RefusedRedirectError for a refused hop or too many of them, and a
 * plain Error (transient) for network trouble.
 */
export function guardedFetch(url: string, options: GuardedFetchOptions): Promise<GuardedResponse> {
  if (!tracingOn()) return fetchHops(url, options);
  // Host and path only: signed storage URLs carry their signature in the query.
  const first = URL.canParse(url) ? new URL(url) : undefined;
  return inSpan(
    "GET",
    { "http.request.method": "GET", "server.address": first?.hostname ?? "", "url.path": first?.pathname.slice(0, 200) ?? "" },
    async (span) => {
      const response = await fetchHops(url, options);
      span?.setAttributes({ "http.response.status_code": response.status, "pulse_bridge.final_url": showUrl(response.url) });
      return response;
    },
    "client",
  );
}

async function fetchHops(url: string, options: GuardedFetchOptions): Promise<GuardedResponse> {
  const maxRedirects = options.maxRedirects ?? MAX_REDIRECTS;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const refused = refusal(options.policy, current);
    if (refused) {
      throw new RefusedRedirectError(
        hop === 0
          ? `${options.what}: refused to fetch ${showUrl(current)}: ${refused}`
          : `${options.what}: refused redirect to ${showUrl(current)}: ${refused}`,
      );
    }
    let message: IncomingMessage;
    try {
      message = await get(current, options.signal, options.headers);
    } catch (error) {
      throw new Error(`${options.what}: ${describeFetchError(error)} (${showUrl(current)})`);
    }
    const status = message.statusCode ?? 0;
    const location = message.headers.location;
    if (status < 300 || status >= 400 || status === 304 || !location) return { status, url: current, message };
    discard(message);
    if (hop >= maxRedirects) throw new RefusedRedirectError(`${options.what}: more than ${maxRedirects} redirects (the last from ${showUrl(current)})`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new RefusedRedirectError(`${options.what}: HTTP ${status} from ${showUrl(current)} redirected to an unusable location`);
    }
    current = next;
  }
}

function get(url: URL, signal: AbortSignal, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    const request = client.get(url, { signal, headers: { "accept-encoding": "gzip, deflate, br", ...headers } }, resolve);
    request.on("error", reject);
  });
}

/** Drops an answer's body without reading it. */
export function discard(message: IncomingMessage): void {
  message.on("error", () => {});
  message.destroy();
}

/** The body as bytes, at most `maxBytes` of them after Content-Encoding is undone. */
export async function readCapped(response: GuardedResponse, maxBytes: number, what: string, limitName: string): Promise<Buffer> {
  const { message } = response;
  const tooLarge = () => new PermanentError(`${what}: larger than ${limitName} (${maxBytes} bytes) once decoded; refused`);
  const encoding = String(message.headers["content-encoding"] ?? "identity")
    .trim()
    .toLowerCase();
  const declared = Number(message.headers["content-length"] ?? NaN);
  let decoder: Transform | undefined;
  if (encoding === "gzip" || encoding === "x-gzip") decoder = createGunzip();
  else if (encoding === "deflate") decoder = createInflate();
  else if (encoding === "br") decoder = createBrotliDecompress();
  else if (encoding !== "identity" && encoding !== "") {
    discard(message);
    throw new PermanentError(`${what}: unsupported Content-Encoding from ${showUrl(response.url)}`);
  } else if (declared > maxBytes) {
    discard(message);
    throw tooLarge();
  }
  const decoded: Readable = decoder ?? message;
  if (decoder) {
    message.on("error", (error) => decoder.destroy(error));
    message.pipe(decoder);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of decoded as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof PermanentError) throw error;
    throw new Error(`${what}: download broke off: ${describeFetchError(error)}`);
  } finally {
    if (size > maxBytes || !message.complete) {
      discard(message);
      decoded.destroy();
    }
  }
  return Buffer.concat(chunks, size);
}

/**
 * The reason of a network failure (ECONNREFUSED, "other side closed", a
 * timeout, ...). Only error codes and the short messages of local network
 * errors are shown: never text that came from the other side.
 */
export function describeFetchError(error: unknown): string {
  const seen = error as { name?: string; code?: string; message?: string; cause?: { name?: string; code?: string; message?: string } } | undefined;
  const names = [seen?.name, seen?.cause?.name];
  if (names.includes("TimeoutError") || names.includes("AbortError") || seen?.code === "ABORT_ERR") return "request timed out";
  // fetch() says only "fetch failed"; the reason is its cause.
  const source = seen?.cause?.code ? seen.cause : seen;
  const code = source?.code;
  if (typeof code === "string" && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) {
    // undici's own codes carry fixed messages ("other side closed"); system errors read "connect ECONNREFUSED 127.0.0.1:1".
    const message = source?.message;
    return message && message.length <= 120 && /^[\w .:'()[\]/-]*$/.test(message) ? (message.includes(code) ? message : `${code}: ${message}`) : code;
  }
  return "network error";
}
