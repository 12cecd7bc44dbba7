/**
 * Keeps one repository's clone under CLONES_DIR current, repairing what an
 * interrupted run left behind. Call only while holding the repository's sync
 * lock: nothing else touches the folder meanwhile.
 *
 * - A new clone is made in `<folder>.tmp-<random>` and renamed into place,
 *   so the folder either holds a complete clone or does not exist.
 * - Leftover temporaries (a worker killed mid-clone) are deleted.
 * - An existing clone gets stale locks removed and unfinished transactions
 *   rolled back; if it is still unreadable it is moved aside and re-cloned.
 */
import { randomBytes } from "node:crypto";
import { access, mkdir, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../core/log.ts";
import type { VcsBackend } from "./backend.ts";
import { clonePathFor } from "./clone-path.ts";

export interface CloneUpdate {
  path: string;
  /** True when the clone was (re)made from scratch. */
  cloned: boolean;
  repairs: string[];
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function removeLeftovers(clonePath: string, log: Logger): Promise<string[]> {
  const parent = path.dirname(clonePath);
  const prefixes = [`${path.basename(clonePath)}.tmp-`, `${path.basename(clonePath)}.broken-`];
  const entries = await readdir(parent).catch(() => [] as string[]);
  const leftovers = entries.filter((name) => prefixes.some((prefix) => name.startsWith(prefix)));
  for (const name of leftovers) await rm(path.join(parent, name), { recursive: true, force: true });
  if (leftovers.length) log.warn({ leftovers }, "removed leftovers of an interrupted clone");
  return leftovers.map((name) => `removed ${name}`);
}

export async function updateClone(options: {
  backend: VcsBackend;
  clonesDir: string;
  url: string;
  staleAfterMs: number;
  log: Logger;
  signal?: AbortSignal;
}): Promise<CloneUpdate> {
  const { backend, url, log, signal } = options;
  const target = clonePathFor(options.clonesDir, url);
  const repairs = await removeLeftovers(target, log);

  if (await exists(target)) {
    repairs.push(...(await backend.repair(target, options.staleAfterMs, log)));
    if (await backend.isUsable(target)) {
      try {
        await backend.pull(target, url, { log, signal });
        return { path: target, cloned: false, repairs };
      } catch (error) {
        // A network failure leaves a usable clone: retry later. A clone that
        // broke under the pull is re-made below.
        if (await backend.isUsable(target)) throw error;
        log.warn({ err: (error as Error).message }, "clone unusable after a failed pull; re-cloning");
      }
    }
    const aside = `${target}.broken-${randomBytes(4).toString("hex")}`;
    await rename(target, aside);
    await rm(aside, { recursive: true, force: true });
    repairs.push("re-cloned an unusable clone");
  }

  await mkdir(path.dirname(target), { recursive: true });
  const temporary = `${target}.tmp-${randomBytes(4).toString("hex")}`;
  const started = Date.now();
  log.info({ url, path: target }, "cloning");
  try {
    await backend.clone(url, temporary, { log, signal });
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
  log.info({ url, elapsedMs: Date.now() - started }, "cloned");
  return { path: target, cloned: true, repairs };
}
