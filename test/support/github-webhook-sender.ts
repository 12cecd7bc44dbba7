/**
 * A local stand-in for GitHub's webhook sender: takes the real push payload
 * kept in test/fixtures/formats (the raw GitHub body inside the github-webhooks
 * envelope), points it at a repository and commits of ours, signs it with
 * X-Hub-Signature-256 as GitHub does and POSTs it over plain node:http (so a
 * refused, oversized body still yields the receiver's status).
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { sign } from "../../src/webhook/signature.ts";
import { formatJson } from "./formats.ts";

export interface PushPayloadOptions {
  fullName: string;
  before: string;
  after: string;
  commits: string[];
  ref?: string;
}

/** GitHub's push body (the real example's fields), for our repository and commits. */
export function pushPayload(options: PushPayloadOptions): Record<string, any> {
  const real = formatJson("github-webhooks/github-webhooks-v1-push.envelope.assembled.json").payload;
  const [owner, name] = options.fullName.split("/");
  const commit = (id: string) => ({ ...real.commits[0], id, url: `https://github.com/${options.fullName}/commit/${id}` });
  return {
    ...real,
    ref: options.ref ?? "refs/heads/main",
    before: options.before,
    after: options.after,
    compare: `https://github.com/${options.fullName}/compare/${options.before.slice(0, 12)}...${options.after.slice(0, 12)}`,
    commits: options.commits.map(commit),
    head_commit: options.commits.length ? commit(options.commits.at(-1)!) : null,
    repository: {
      ...real.repository,
      name,
      full_name: options.fullName,
      owner: { ...real.repository.owner, name: owner, login: owner },
      html_url: `https://github.com/${options.fullName}`,
      clone_url: `https://github.com/${options.fullName}.git`,
    },
  };
}

export interface Delivery {
  status: number;
  body: { outcome?: string; detail?: string; error?: string };
  /** Milliseconds from the request's start to the whole answer. */
  ms: number;
}

export interface SendOptions {
  event?: string;
  delivery?: string;
  /** The secret to sign with; null: no signature header. */
  secret?: string | null;
  /** Replaces the computed signature (e.g. to sign one body and send another). */
  signature?: string;
  contentType?: string;
  /** Send without Content-Length (chunked), as a streaming sender would. */
  chunked?: boolean;
}

export function newDeliveryId(): string {
  return randomUUID();
}

/** Sends one delivery to `url` (the receiver's POST /github). */
export function deliver(url: string, payload: unknown, options: SendOptions = {}): Promise<Delivery> {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
  const headers: Record<string, string> = {
    "Content-Type": options.contentType ?? "application/json",
    "User-Agent": "GitHub-Hookshot/044aadd",
    "X-GitHub-Event": options.event ?? "push",
    "X-GitHub-Delivery": options.delivery ?? newDeliveryId(),
    "X-GitHub-Hook-ID": "292430182",
    "X-GitHub-Hook-Installation-Target-Type": "repository",
    "X-GitHub-Hook-Installation-Target-ID": "79929171",
  };
  if (options.signature !== undefined) headers["X-Hub-Signature-256"] = options.signature;
  else if (options.secret !== null && options.secret !== undefined) headers["X-Hub-Signature-256"] = sign(options.secret, body);
  if (!options.chunked) headers["Content-Length"] = String(body.length);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = http.request(url, { method: "POST", headers }, (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: Delivery["body"] = {};
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = { error: text.slice(0, 200) };
        }
        resolve({ status: response.statusCode ?? 0, body: parsed, ms: performance.now() - started });
      });
      response.on("error", reject);
    });
    // The receiver may answer (413) and close before the whole body is written.
    request.on("error", (error) => {
      if (!answered) reject(error);
    });
    if (options.chunked) {
      for (let offset = 0; offset < body.length; offset += 64 * 1024) request.write(body.subarray(offset, offset + 64 * 1024));
      request.end();
    } else request.end(body);
  });
}
