/**
 * Readers of git's history output whose framing no commit content can
 * confuse ("parse, don't split"): a commit message or file name may hold any
 * separator a text format could use (newlines, \x1e, NUL where git lets it
 * in), so
 *
 * - commit metadata comes from `git cat-file --batch`: each object is
 *   announced by a header line we can trust (`<oid> <type> <size>`) and
 *   followed by exactly `size` raw bytes, then parsed the way git parses a
 *   commit (headers up to the first empty line, continuation lines of
 *   gpgsig/mergetag start with a space, then the message);
 * - file lists come from `git diff-tree --stdin -z`: NUL-terminated tokens
 *   in a fixed order (commit id, then status and path pairs), read
 *   positionally, so a path is never taken for anything else.
 *
 * Both readers are incremental: they take stdout chunk by chunk, never hold
 * more than one object (capped at MAX_OBJECT_BYTES) or one path (capped at
 * MAX_TOKEN_BYTES) beyond what they have parsed, and never throw from push():
 * a framing error is recorded and reported by end().
 */
import { TextDecoder } from "node:util";
import type { ChangesetRecord, FileAction } from "./backend.ts";
import { cleanText, dateFromSeconds } from "./backend.ts";

/** Bytes kept of one commit object; the rest (an absurd message) is read and dropped. */
export const MAX_OBJECT_BYTES = 1024 * 1024;
/** Bytes kept of one path; git's own limit is far lower on every real filesystem. */
const MAX_TOKEN_BYTES = 64 * 1024;
const MAX_HEADER_LINE = 1024;

const LF = 0x0a;
const NUL = 0x00;

export type CatFileAnswer = { oid: string; type: string; size: number; body: Buffer; truncated: boolean } | { missing: string };

/**
 * `git cat-file --batch` output → one answer per input line, in order, handed
 * to `onAnswer` as soon as it is complete (so a batch's raw objects are never
 * all held at once).
 */
export class CatFileBatchReader {
  private answered = 0;
  private error: string | undefined;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private current: { oid: string; type: string; size: number } | undefined;
  private remaining = 0;
  private parts: Buffer[] = [];
  private kept = 0;
  private expectLf = false;

  constructor(private readonly onAnswer: (answer: CatFileAnswer) => void) {}

  private answer(answer: CatFileAnswer): void {
    this.answered++;
    this.onAnswer(answer);
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && this.error === undefined) {
      if (this.current) {
        const take = Math.min(this.remaining, chunk.length - offset);
        const room = Math.min(take, MAX_OBJECT_BYTES - this.kept);
        const whole = this.parts.length === 0 && take === this.remaining && room === take;
        if (room > 0) {
          // The common case, an object inside one chunk, is handed over without a copy
          // (onAnswer runs now, before the chunk is released).
          this.parts.push(whole ? chunk.subarray(offset, offset + room) : Buffer.from(chunk.subarray(offset, offset + room)));
          this.kept += room;
        }
        this.remaining -= take;
        offset += take;
        if (this.remaining === 0) {
          const { oid, type, size } = this.current;
          this.answer({ oid, type, size, body: this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts), truncated: this.kept < size });
          this.current = undefined;
          this.parts = [];
          this.kept = 0;
          this.expectLf = true;
        }
        continue;
      }
      if (this.expectLf) {
        if (chunk[offset] !== LF) {
          this.error = "object not followed by a newline";
          return;
        }
        this.expectLf = false;
        offset++;
        continue;
      }
      const newline = chunk.indexOf(LF, offset);
      const end = newline < 0 ? chunk.length : newline;
      this.header.push(chunk.subarray(offset, end));
      this.headerBytes += end - offset;
      if (this.headerBytes > MAX_HEADER_LINE) {
        this.error = "header line too long";
        return;
      }
      offset = end;
      if (newline < 0) continue;
      offset++;
      const line = Buffer.concat(this.header).toString("latin1");
      this.header = [];
      this.headerBytes = 0;
      this.startObject(line);
    }
  }

  private startObject(line: string): void {
    const found = /^([0-9a-f]{40}|[0-9a-f]{64}) ([a-z]+) (\d+)$/.exec(line);
    if (found) {
      this.current = { oid: found[1]!, type: found[2]!, size: Number(found[3]) };
      this.remaining = this.current.size;
      // A zero-length object is complete at once.
      if (this.remaining === 0) {
        this.answer({ ...this.current, body: Buffer.alloc(0), truncated: false });
        this.current = undefined;
        this.expectLf = true;
      }
      return;
    }
    const missing = /^(\S+) (missing|ambiguous)$/.exec(line);
    if (missing) return void this.answer({ missing: missing[1]! });
    this.error = `unexpected cat-file line ${JSON.stringify(line.slice(0, 80))}`;
  }

  /** The number of answers; throws if the output stopped inside one or was malformed. */
  end(): number {
    if (this.error === undefined && (this.current || this.headerBytes > 0 || this.expectLf)) this.error = "output ends inside an answer";
    if (this.error !== undefined) throw new Error(`git cat-file: ${this.error}`);
    return this.answered;
  }
}

const ACTIONS: Record<string, FileAction> = { A: "added", M: "modified", D: "removed", T: "modified" };

/**
 * `git diff-tree --stdin -z -r --root --no-renames --name-status` output →
 * files per commit id. Commits without a diff (merges) print nothing.
 */
export class DiffTreeReader {
  readonly files = new Map<string, ChangesetRecord["files"]>();
  private error: string | undefined;
  private token: Buffer[] = [];
  private tokenBytes = 0;
  private commit: ChangesetRecord["files"] | undefined;
  /** Paths still to read after a status token, and what to record them as. */
  private pathsLeft = 0;
  private action: FileAction | undefined;

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && this.error === undefined) {
      const nul = chunk.indexOf(NUL, offset);
      const end = nul < 0 ? chunk.length : nul;
      const room = Math.min(end - offset, MAX_TOKEN_BYTES - this.tokenBytes);
      if (nul >= 0 && this.tokenBytes === 0) {
        // A token inside one chunk: no copy.
        this.take(chunk.subarray(offset, offset + room));
        offset = nul + 1;
        continue;
      }
      if (room > 0) {
        this.token.push(Buffer.from(chunk.subarray(offset, offset + room)));
        this.tokenBytes += room;
      }
      offset = end;
      if (nul < 0) break;
      offset++;
      const token = Buffer.concat(this.token);
      this.token = [];
      this.tokenBytes = 0;
      this.take(token);
    }
  }

  private take(token: Buffer): void {
    if (this.pathsLeft > 0) {
      this.pathsLeft--;
      // A copy or rename (not asked for) names source then destination: keep the destination.
      if (this.pathsLeft === 0 && this.action) this.commit!.push({ path: cleanText(token.toString("utf8")), action: this.action });
      return;
    }
    const text = token.toString("latin1");
    if (/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(text)) {
      this.commit = [];
      this.files.set(text, this.commit);
      return;
    }
    if (this.commit && /^[A-Z][0-9]*$/.test(text)) {
      this.action = ACTIONS[text[0]!];
      this.pathsLeft = text[0] === "R" || text[0] === "C" ? 2 : 1;
      return;
    }
    this.error = `unexpected diff-tree token ${JSON.stringify(text.slice(0, 80))}`;
  }

  end(): Map<string, ChangesetRecord["files"]> {
    if (this.error === undefined && (this.tokenBytes > 0 || this.pathsLeft > 0)) this.error = "output ends inside an entry";
    if (this.error !== undefined) throw new Error(`git diff-tree: ${this.error}`);
    return this.files;
  }
}

type Decoder = { decode(bytes: Buffer): string };
const LATIN1: Decoder = { decode: (bytes) => bytes.toString("latin1") };
const UTF8: Decoder = { decode: (bytes) => bytes.toString("utf8") };
const decoders = new Map<string, Decoder>();

function decoderFor(encoding: string | undefined): Decoder {
  // git log re-encodes a commit that declares another encoding to UTF-8
  // (and leaves it as is when it does not know the encoding). TextDecoder
  // reads "ISO-8859-1" as windows-1252; iconv, which git uses, does not.
  if (!encoding) return UTF8;
  if (/^(iso[-_]?8859-1|latin-?1|l1)$/i.test(encoding)) return LATIN1;
  const label = encoding.toLowerCase();
  let decoder = decoders.get(label);
  if (!decoder) {
    try {
      decoder = new TextDecoder(label);
    } catch {
      decoder = UTF8; // unknown label
    }
    if (decoders.size < 64) decoders.set(label, decoder);
  }
  return decoder;
}

const GIT_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** git's split_ident_line, as `%an <%ae>` and `%at` print it. */
function parseIdent(ident: Buffer, decoder: Decoder): { author: string; seconds: number } {
  const lt = ident.indexOf("<");
  const gt = lt < 0 ? -1 : ident.indexOf(">", lt + 1);
  if (lt < 0 || gt < 0) return { author: " <>", seconds: 0 };
  let nameEnd = lt;
  // git's isspace() is ASCII only: a UTF-8 byte such as 0xa0 (in "à") is part of the name.
  while (nameEnd > 0 && GIT_SPACE.has(ident[nameEnd - 1]!)) nameEnd--;
  const name = decoder.decode(ident.subarray(0, nameEnd));
  const mail = decoder.decode(ident.subarray(lt + 1, gt));
  // The date follows the last '>' (git tolerates a stray '>' in the address)
  // and counts only with a time zone after it.
  const tail = ident.subarray(ident.lastIndexOf(">") + 1).toString("latin1");
  const date = /^[ \t\n\r]*(\d+)[ \t\n\r]*[+-]\d+/.exec(tail);
  return { author: `${name} <${mail}>`, seconds: date ? Number(date[1]) : 0 };
}

/** A raw commit object (cat-file's bytes) → the record git log would show; files come separately. */
export function parseCommitObject(oid: string, body: Buffer, files: ChangesetRecord["files"]): ChangesetRecord {
  const blank = body.indexOf("\n\n");
  const headerEnd = blank < 0 ? body.length : blank;
  const parents: string[] = [];
  let authorLine: Buffer | undefined;
  let encoding: string | undefined;
  let inParents = false;
  let start = 0;
  for (let index = 0; start <= headerEnd; index++) {
    let end = body.indexOf(LF, start);
    if (end < 0 || end > headerEnd) end = headerEnd;
    const line = body.subarray(start, end);
    start = end + 1;
    // Continuation lines (gpgsig, mergetag) start with a space: never a header.
    if (line[0] === 0x20) continue;
    const text = line.subarray(0, 80).toString("latin1");
    // git takes parents only from the lines right after "tree".
    if (index === 0) inParents = text.startsWith("tree ");
    else if (inParents && line.length <= 71 && /^parent ([0-9a-f]{40}|[0-9a-f]{64})$/.test(text)) parents.push(text.slice(7));
    else inParents = false;
    if (!authorLine && text.startsWith("author ")) authorLine = line.subarray(7);
    else if (encoding === undefined && text.startsWith("encoding ")) encoding = line.subarray(9).toString("latin1").trim();
  }
  const decoder = decoderFor(encoding && !/^utf-?8$/i.test(encoding) ? encoding : undefined);
  const { author, seconds } = authorLine ? parseIdent(authorLine, decoder) : { author: " <>", seconds: 0 };
  const message = blank < 0 ? "" : decoder.decode(body.subarray(blank + 2));
  return {
    revision: oid,
    author: cleanText(author),
    description: cleanText(message.replace(/\n+$/, "")),
    date: dateFromSeconds(seconds),
    branch: null,
    parents,
    files,
  };
}
