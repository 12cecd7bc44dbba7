/** Reads the real message and API examples kept in ../shared/formats (see its README). */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const FORMATS_DIR = process.env.FORMATS_DIR ?? path.resolve(fileURLToPath(new URL("../../..", import.meta.url)), "shared", "formats");

export function formatText(relative: string): string {
  return readFileSync(path.join(FORMATS_DIR, relative), "utf8");
}

export function formatJson<T = any>(relative: string): T {
  return JSON.parse(formatText(relative)) as T;
}
