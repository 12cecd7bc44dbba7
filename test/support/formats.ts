/**
 * Reads the real message and API examples kept in test/fixtures/formats: each
 * file's upstream source and how faithful it is are listed in that folder's
 * README.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const FORMATS_DIR = fileURLToPath(new URL("../fixtures/formats", import.meta.url));

export function formatText(relative: string): string {
  return readFileSync(path.join(FORMATS_DIR, relative), "utf8");
}

export function formatJson<T = any>(relative: string): T {
  return JSON.parse(formatText(relative)) as T;
}
