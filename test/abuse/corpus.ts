/**
 * The abuse corpus: hostile or broken inputs, each with the outcome
 * pulse-bridge must give it. Built on the real formats (test/fixtures/formats) so
 * that each entry breaks exactly one thing of an otherwise valid message.
 *
 * Three families, one per entry point that untrusted text reaches:
 * - `message`: a Pulse delivery, through routeMessage (and, in the test, a
 *   running bridge): dead-lettered with a reason naming the fault, ignored,
 *   or enqueued when the bridge cannot know better (then the worker's URL
 *   policy must refuse the repository: `refusedBy`).
 * - `url`: a repository URL as the hg-sync worker gets it: refused by the URL
 *   policy before any process starts, or accepted and passed to hg safely.
 * - `elmo`: an elmo.json artifact: refused by its schema with a reason.
 */
import type { FeedKind, PulseExchanges } from "../../src/core/config.ts";
import { formatJson } from "../support/formats.ts";

export type MessageOutcome =
  | { action: "dead-letter"; reason: RegExp }
  | { action: "ignore"; reason: RegExp }
  /** Enqueued (the bridge checks shape, not policy); the worker must refuse the job's repository URL. */
  | { action: "enqueue"; refusedBy?: RegExp };

export interface MessageCase {
  family: "message";
  name: string;
  feed: FeedKind;
  exchange: keyof PulseExchanges;
  routingKey: string;
  body: Buffer;
  headers?: Record<string, unknown>;
  expect: MessageOutcome;
}

export interface UrlCase {
  family: "url";
  name: string;
  url: string;
  /** A reason the URL policy gives, or "accepted" (then hg gets it after `--`). */
  expect: RegExp | "accepted";
}

export interface ElmoCase {
  family: "elmo";
  name: string;
  text: string;
  /** The schema's reason, or "accepted" (harmless oddities that must parse without side effects). */
  reason: RegExp | "accepted";
}

export type AbuseCase = MessageCase | UrlCase | ElmoCase;

// ---- helpers ----------------------------------------------------------------

const hgEnvelope = formatJson<any>("hgpushes/v2-changegroup.1.l10n-central-de.envelope.json");
const githubEnvelope = formatJson<any>("github-webhooks/github-webhooks-v1-push.envelope.assembled.json");
const taskDelivery = formatJson<any>("taskcluster-pulse/task-completed.delivery.firefox-ci-l10n.assembled.json");
const elmoExample = {
  version: "1.0",
  "compare-locales": "9.0.4",
  repository: "https://hg.mozilla.org/l10n/gecko-strings/",
  comparisons: [
    {
      locale: "de",
      config: "_configs/browser.toml",
      artifact: "compares/browser.de.json",
      revisions: { "/l10n/gecko-strings/": "a".repeat(40), "/l10n-central/de/": "b".repeat(40) },
      summary: { errors: 0, warnings: 1, missing: 2, missing_w: 3, report: 0, obsolete: 0, changed: 10, changed_w: 40, unchanged: 1, unchanged_w: 2, keys: 0 },
    },
  ],
};

const json = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8");
const clone = <T>(value: T): T => structuredClone(value);

/** A changegroup.1 envelope with `edit` applied to its data. */
function changegroup(edit: (data: any) => void): Buffer {
  const body = clone(hgEnvelope);
  edit(body.payload.data);
  return json(body);
}

function hgCase(name: string, body: Buffer, expect: MessageOutcome, routingKey = "l10n-central/de"): MessageCase {
  return { family: "message", name, feed: "hgpushes", exchange: "hgpushes", routingKey, body, expect };
}

function githubCase(name: string, edit: (payload: any) => void, expect: MessageOutcome): MessageCase {
  const body = clone(githubEnvelope);
  edit(body.payload);
  return {
    family: "message",
    name,
    feed: "github",
    exchange: "githubWebhooks",
    routingKey: "mozilla-mobile/android-components/push",
    body: json(body),
    expect,
  };
}

function taskCase(name: string, edit: (body: any) => void, expect: MessageOutcome): MessageCase {
  const body = clone(taskDelivery.body);
  edit(body);
  return {
    family: "message",
    name,
    feed: "taskcluster",
    exchange: "taskCompleted",
    routingKey: taskDelivery.fields.routingKey,
    body: json(body),
    headers: { CC: ["route.project.l10n.elmo.v1"] },
    expect,
  };
}

/** `[[[...]]]` nested `depth` times, built as text (JSON.stringify would recurse). */
function deeplyNested(depth: number, inner = "1"): string {
  return "[".repeat(depth) + inner + "]".repeat(depth);
}

function elmo(name: string, edit: (elmo: any) => void, reason: RegExp): ElmoCase {
  const value = clone(elmoExample);
  edit(value);
  return { family: "elmo", name, text: JSON.stringify(value), reason };
}

const deadLetter = (reason: RegExp): MessageOutcome => ({ action: "dead-letter", reason });
const refused = (reason: RegExp): MessageOutcome => ({ action: "enqueue", refusedBy: reason });

// ---- the corpus -------------------------------------------------------------

export const MESSAGE_CASES: MessageCase[] = [
  // Encodings and framing
  hgCase("empty body", Buffer.alloc(0), deadLetter(/not JSON/)),
  hgCase("truncated JSON", json(hgEnvelope).subarray(0, 100), deadLetter(/not JSON/)),
  hgCase(
    "invalid UTF-8 bytes",
    Buffer.concat([Buffer.from('{"payload": "'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')]),
    deadLetter(/not valid UTF-8/),
  ),
  hgCase("UTF-16LE encoded JSON", Buffer.from(JSON.stringify(hgEnvelope), "utf16le"), deadLetter(/not JSON/)),
  // Harmless once canonical: new URL() percent-encodes the lone surrogate as U+FFFD.
  hgCase(
    "lone surrogate escape in a string",
    Buffer.from('{"payload": {"type": "changegroup.1", "data": {"repo_url": "https://hg.mozilla.org/\\ud800", "heads": [], "pushlog_pushes": []}}}'),
    { action: "enqueue" },
  ),
  hgCase("JSON null", Buffer.from("null"), deadLetter(/JSON null, not an object/)),
  hgCase("JSON array", Buffer.from("[1,2,3]"), deadLetter(/JSON array, not an object/)),
  hgCase("JSON string", Buffer.from('"changegroup.1"'), deadLetter(/JSON string, not an object/)),
  hgCase("body of 1 MiB + 1 byte", Buffer.alloc(1024 * 1024 + 1, 0x20), deadLetter(/exceeds the 1048576-byte limit/)),
  hgCase(
    "body of 5 MiB kept truncated",
    Buffer.concat([Buffer.from('{"x":"'), Buffer.alloc(5 * 1024 * 1024, 0x61), Buffer.from('"}')]),
    deadLetter(/exceeds.*truncated to its first 65536 of 5242888 bytes/),
  ),
  hgCase(
    "binary body of 5 MiB kept truncated",
    Buffer.concat([Buffer.from([0xff]), Buffer.alloc(5 * 1024 * 1024, 0x80)]),
    deadLetter(/exceeds.*truncated to its first 65536 of 5242881 bytes/),
  ),
  hgCase("nesting 100,000 deep as data", Buffer.from(`{"payload": {"type": "changegroup.1", "data": ${deeplyNested(100_000)}}}`), deadLetter(/payload\.data/)),
  hgCase(
    "nesting 100,000 deep as heads",
    Buffer.from(
      `{"payload": {"type": "changegroup.1", "data": {"repo_url": "https://hg.mozilla.org/x", "heads": ${deeplyNested(100_000, '"a"')}, "pushlog_pushes": []}}}`,
    ),
    deadLetter(/heads\[0\]/),
  ),
  hgCase(
    "__proto__ key (prototype pollution attempt)",
    Buffer.from(`{"__proto__": {"polluted": true}, "payload": {"type": "obsolete.1", "data": {"__proto__": {"polluted": true}}}}`),
    { action: "ignore", reason: /obsolete/ },
  ),

  // Wrong shapes and types
  hgCase("neither envelope nor payload", json({ hello: "world" }), deadLetter(/neither a \{payload/)),
  hgCase("type is an object", json({ payload: { type: { evil: 1 }, data: {} } }), deadLetter(/payload\.type/)),
  hgCase(
    "repo_url is a number",
    changegroup((d) => (d.repo_url = 42)),
    deadLetter(/payload\.data\.repo_url/),
  ),
  hgCase(
    "heads is a string",
    changegroup((d) => (d.heads = "2f77bc4f354d9ba67ea5270b2fc789f4b0521287")),
    deadLetter(/payload\.data\.heads/),
  ),
  hgCase(
    "pushid is negative",
    changegroup((d) => (d.pushlog_pushes[0].pushid = -1)),
    deadLetter(/pushid/),
  ),
  hgCase("pushid is 1e400 (Infinity)", Buffer.from(JSON.stringify(hgEnvelope).replace('"pushid":7412', '"pushid":1e400')), deadLetter(/pushid/)),
  hgCase(
    "pushid is a string",
    changegroup((d) => (d.pushlog_pushes[0].pushid = "7412")),
    deadLetter(/pushid/),
  ),
  hgCase("pushid beyond 2^53", Buffer.from(JSON.stringify(hgEnvelope).replace('"pushid":7412', '"pushid":9007199254740993')), deadLetter(/pushid/)),
  hgCase("unknown type with a 10 kB name", json({ payload: { type: "x".repeat(10_000), data: {} } }), {
    action: "ignore",
    reason: /^hgpushes type x{50} not handled$/,
  }),

  // Revisions that are not 40-hex
  hgCase(
    "head is an option (--upload-pack)",
    changegroup((d) => (d.heads = ["--upload-pack=touch /tmp/pwned"])),
    deadLetter(/heads\[0\]: must be a 40-hex/),
  ),
  hgCase(
    "head is a revset (tip)",
    changegroup((d) => (d.heads = ["tip"])),
    deadLetter(/heads\[0\]: must be a 40-hex/),
  ),
  hgCase(
    "head is 39 hex",
    changegroup((d) => (d.heads = ["2f77bc4f354d9ba67ea5270b2fc789f4b052128"])),
    deadLetter(/heads\[0\]/),
  ),
  hgCase(
    "head is 40 chars with a shell metacharacter",
    changegroup((d) => (d.heads = ["2f77bc4f354d9ba67ea5270b2fc789f4b052128;"])),
    deadLetter(/heads\[0\]/),
  ),

  // Repository URLs: schemes the bridge refuses outright
  hgCase(
    "repo_url file://",
    changegroup((d) => (d.repo_url = "file:///etc")),
    deadLetter(/repo_url: must be an http\(s\) URL/),
  ),
  hgCase(
    "repo_url ext:: transport",
    changegroup((d) => (d.repo_url = "ext::sh -c touch% /tmp/pwned")),
    deadLetter(/repo_url/),
  ),
  hgCase(
    "repo_url is an option (--upload-pack)",
    changegroup((d) => (d.repo_url = "--upload-pack=touch /tmp/pwned")),
    deadLetter(/repo_url/),
  ),
  hgCase(
    "repo_url ssh -oProxyCommand",
    changegroup((d) => (d.repo_url = "ssh://-oProxyCommand=touch /tmp/pwned/x")),
    deadLetter(/repo_url/),
  ),
  hgCase("newrepo.1 with a file path", json({ payload: { type: "newrepo.1", data: { repo_url: "/etc/passwd" } } }), deadLetter(/repo_url/)),

  // Repository URLs the bridge enqueues (well-formed http) and the worker must refuse
  hgCase(
    "repo_url on a host not allowed",
    changegroup((d) => (d.repo_url = "https://evil.example.com/l10n-central/de")),
    refused(/not in ALLOWED_HOSTS/),
  ),
  hgCase(
    "repo_url with .. traversal",
    changegroup((d) => (d.repo_url = "https://hg.mozilla.org/../../../etc")),
    refused(/'\.' or '\.\.' segments/),
  ),
  hgCase(
    "repo_url with encoded traversal",
    changegroup((d) => (d.repo_url = "https://hg.mozilla.org/l10n%2F..%2F..%2Fetc")),
    refused(/'\.' or '\.\.' segments|encoded separators/),
  ),
  // Credentials never reach a job id, a lock name or a log: refused by the bridge itself.
  hgCase(
    "repo_url with credentials",
    changegroup((d) => (d.repo_url = "https://user:secret@hg.mozilla.org/l10n-central/de")),
    deadLetter(/repo_url: must not carry credentials/),
  ),
  hgCase(
    "repo_url with a token as user",
    changegroup((d) => (d.repo_url = "https://ghp_secret@hg.mozilla.org/l10n-central/de")),
    deadLetter(/repo_url: must not carry credentials/),
  ),
  hgCase(
    "newrepo.1 with credentials",
    json({ payload: { type: "newrepo.1", data: { repo_url: "https://user:secret@hg.mozilla.org/l10n-central/xx" } } }),
    deadLetter(/repo_url: must not carry credentials/),
  ),
  hgCase(
    "repo_url with a query (--config hook)",
    changegroup((d) => (d.repo_url = "https://hg.mozilla.org/x?--config=hooks.pre-pull=touch")),
    refused(/query strings/),
  ),
  hgCase("routing key with traversal and shell metacharacters", json(hgEnvelope), { action: "enqueue" }, "../../../etc/passwd; rm -rf / `id` $(id)"),

  // GitHub
  githubCase("GitHub full_name with traversal", (p) => (p.repository.full_name = "../.."), refused(/'\.' or '\.\.' segments/)),
  githubCase("GitHub full_name with three segments", (p) => (p.repository.full_name = "a/b/c"), deadLetter(/repository\.full_name/)),
  githubCase("GitHub commits is not an array", (p) => (p.commits = "all"), deadLetter(/payload\.commits/)),
  githubCase(
    "GitHub clone_url with credentials",
    (p) => (p.repository.clone_url = "https://x-access-token:secret@github.com/o/r.git"),
    deadLetter(/repository\.clone_url: must not carry credentials/),
  ),
  githubCase(
    "GitHub html_url with a token",
    (p) => (p.repository.html_url = "https://secret@github.com/o/r"),
    deadLetter(/repository\.html_url: must not carry credentials/),
  ),

  // Taskcluster
  taskCase("taskId with traversal", (b) => (b.status.taskId = "../../../etc/passwd"), deadLetter(/status\.taskId: must be a Taskcluster slugid/)),
  taskCase("taskId with shell metacharacters", (b) => (b.status.taskId = "$(touch /tmp/x)aaaaaaaaaaaaaa"), deadLetter(/status\.taskId/)),
  taskCase("runId negative", (b) => (b.runId = -1), deadLetter(/runId/)),
  taskCase("runId absurd", (b) => (b.runId = 1e12), deadLetter(/runId/)),
  taskCase("runId a string", (b) => (b.runId = "0"), deadLetter(/runId/)),
  taskCase("status missing", (b) => delete b.status, deadLetter(/status/)),
];

export const URL_CASES: UrlCase[] = [
  { family: "url", name: "ext:: transport", url: "ext::sh%20-c%20touch%20/tmp/pwned", expect: /only http/ },
  { family: "url", name: "file://", url: "file:///etc/passwd", expect: /only http/ },
  { family: "url", name: "plain local path", url: "/etc", expect: /only http/ },
  { family: "url", name: "option --upload-pack", url: "--upload-pack=touch%20/tmp/pwned", expect: /command-line option/ },
  { family: "url", name: "option -oProxyCommand", url: "-oProxyCommand=touch%20/tmp/pwned", expect: /command-line option/ },
  { family: "url", name: "ssh with -oProxyCommand host", url: "ssh://-oProxyCommand=touch%20/tmp/pwned/x", expect: /only http/ },
  { family: "url", name: "http with :: transport inside", url: "https://127.0.0.1/ext::sh", expect: /transport prefix/ },
  { family: "url", name: "host not allowed", url: "https://evil.example.com/mozilla-central", expect: /not in ALLOWED_HOSTS/ },
  { family: "url", name: "allowed name as a subdomain of another", url: "https://127.0.0.1.evil.example.com/x", expect: /not in ALLOWED_HOSTS/ },
  { family: "url", name: ".. segments", url: "https://127.0.0.1/a/../../etc", expect: /'\.' or '\.\.'/ },
  { family: "url", name: "percent-encoded .. segment", url: "https://127.0.0.1/a/%2e%2e/%2E%2E/etc", expect: /'\.' or '\.\.'/ },
  { family: "url", name: "encoded slash", url: "https://127.0.0.1/a%2f..%2f..%2fetc", expect: /encoded separators/ },
  { family: "url", name: "backslash", url: "https://127.0.0.1/a\\..\\..\\etc", expect: /'\.' or '\.\.'|encoded separators/ },
  { family: "url", name: "NUL byte", url: "https://127.0.0.1/a\u0000b", expect: /control characters/ },
  { family: "url", name: "newline (header/argument splitting)", url: "https://127.0.0.1/a\n--upload-pack=x", expect: /whitespace or control/ },
  { family: "url", name: "shell metacharacters with spaces", url: "https://127.0.0.1/a; rm -rf /", expect: /whitespace/ },
  { family: "url", name: "credentials", url: "https://user:pw@127.0.0.1/repo", expect: /credentials/ },
  { family: "url", name: "query string", url: "https://127.0.0.1/repo?cmd=x", expect: /query strings/ },
  { family: "url", name: "no path", url: "https://127.0.0.1/", expect: /names no repository path/ },
  { family: "url", name: "over 2048 characters", url: `https://127.0.0.1/${"a".repeat(3000)}`, expect: /longer than 2048/ },
  // Strange but harmless: accepted, and hg must get them as data after `--`.
  { family: "url", name: "shell metacharacters without spaces", url: "https://127.0.0.1/$(id)`id`;|&>x", expect: "accepted" },
  { family: "url", name: "path segment that looks like an option", url: "https://127.0.0.1/-oProxyCommand=x/--upload-pack=y", expect: "accepted" },
  { family: "url", name: "dot-files as path segments", url: "https://127.0.0.1/.hg/..hg/.git", expect: "accepted" },
];

export const ELMO_CASES: ElmoCase[] = [
  { family: "elmo", name: "not JSON", text: "{version: 1.0", reason: /elmo\.json is not JSON/ },
  { family: "elmo", name: "nesting 100,000 deep", text: deeplyNested(100_000), reason: /elmo\.json is invalid/ },
  elmo("version 2.0", (e) => (e.version = "2.0"), /version: must be "1\.x"/),
  elmo("locale with traversal", (e) => (e.comparisons[0].locale = "../../etc"), /comparisons\[0\]\.locale/),
  elmo("config absolute path", (e) => (e.comparisons[0].config = "/etc/passwd"), /comparisons\[0\]\.config: must be a relative path/),
  elmo("config with ..", (e) => (e.comparisons[0].config = "_configs/../../../etc/shadow"), /comparisons\[0\]\.config: must not contain '\.\.'/),
  elmo("artifact with backslashes", (e) => (e.comparisons[0].artifact = "..\\..\\secret"), /comparisons\[0\]\.artifact/),
  elmo("artifact with a control character", (e) => (e.comparisons[0].artifact = "compares/a\u001b[31m.json"), /control characters/),
  elmo("revisions key file://", (e) => (e.comparisons[0].revisions = { "file:///etc/": "a".repeat(40) }), /revisions.*must be a path or an http\(s\) URL/),
  elmo("revisions key with encoded ..", (e) => (e.comparisons[0].revisions = { "/l10n/%2e%2e/%2e%2e/etc": "a".repeat(40) }), /must not contain '\.\.'/),
  elmo("revision not 40-hex", (e) => (e.comparisons[0].revisions["/l10n-central/de/"] = "tip"), /must be a full 40-hex revision/),
  elmo("revision an option", (e) => (e.comparisons[0].revisions["/l10n-central/de/"] = "--config=hooks.x=y"), /must be a full 40-hex revision/),
  elmo(
    "65 repositories in one comparison",
    (e) => (e.comparisons[0].revisions = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`/r${i}/`, "a".repeat(40)]))),
    /at most 64 repositories/,
  ),
  elmo("negative count", (e) => (e.comparisons[0].summary.missing = -1), /summary\.missing/),
  elmo("absurd count", (e) => (e.comparisons[0].summary.changed = 1e15), /summary\.changed/),
  elmo("fractional count", (e) => (e.comparisons[0].summary.keys = 1.5), /summary\.keys/),
  elmo("count as a string", (e) => (e.comparisons[0].summary.errors = "0"), /summary\.errors/),
  elmo("summary missing a count", (e) => delete e.comparisons[0].summary.unchanged, /summary\.unchanged/),
  elmo("repository javascript:", (e) => (e.repository = "javascript:alert(1)"), /repository: must be an http\(s\) URL/),
  elmo("repository ftp://", (e) => (e.repository = "ftp://hg.mozilla.org/x"), /repository: must be an http\(s\) URL/),
  elmo("comparisons is an object", (e) => (e.comparisons = { 0: e.comparisons[0] }), /comparisons/),
  elmo("locale and config repeated", (e) => e.comparisons.push(clone(e.comparisons[0])), /comparisons\[1\]: repeats locale de/),
  {
    family: "elmo",
    name: "__proto__ in summary",
    text: JSON.stringify(elmoExample).replace('"summary":{', '"summary":{"__proto__":{"errors":1},'),
    reason: "accepted",
  },
];

export const CORPUS_SIZE = MESSAGE_CASES.length + URL_CASES.length + ELMO_CASES.length;
