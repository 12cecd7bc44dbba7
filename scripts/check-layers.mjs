// The layers of src/ (docs/ARCHITECTURE.md draws them), checked over the
// import graph: every relative import, type-only ones included (TypeScript 7
// has no compiler API, so graph tools that need one miss `import type`), and
// every package import of the folders the bridge loads. Prints each broken
// rule by name and exits 1; `npm run lint` runs it, and so CI.
//
// Usage: node scripts/check-layers.mjs [root]   (root defaults to the repository)
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Each folder of src/ with the folders it may import (itself always). cli may import all. */
export const LAYERS = {
  core: { rule: "core-imports-nothing-of-ours", may: [] },
  contract: { rule: "contract-stands-on-core", may: ["core"] },
  storage: { rule: "storage-stands-on-core", may: ["core", "generated"] },
  pulse: { rule: "pulse-stands-on-core", may: ["core"] },
  http: { rule: "http-stands-on-core", may: ["core"] },
  vcs: { rule: "vcs-imports-nothing-of-the-pools", may: ["core"] },
  "stand-ins": { rule: "stand-ins-stand-alone", may: ["core"] },
  routing: { rule: "routing-is-pure", may: ["core", "contract"] },
  bridge: { rule: "bridge-stays-thin", may: ["core", "contract", "routing", "pulse"] },
  replay: { rule: "replay-routes-like-the-bridge", may: ["core", "contract", "routing", "pulse"] },
  jobs: { rule: "pools-import-no-bridge-or-dashboard", may: ["core", "contract", "storage", "vcs", "http"] },
  dashboard: { rule: "dashboard-imports-no-bridge-or-pools", may: ["core", "contract", "storage", "pulse", "http", "vcs"] },
  webhook: { rule: "webhook-validates-and-enqueues", may: ["core", "contract", "routing"] },
  backfill: { rule: "backfill-enqueues-like-the-live-flow", may: ["core", "contract", "routing", "http", "storage"] },
  doctor: { rule: "doctor-checks-from-below", may: ["core", "contract", "storage", "pulse", "http", "vcs"] },
  start: { rule: "start-composes-the-roles", may: ["core", "contract", "storage", "bridge", "jobs", "dashboard", "webhook"] },
  demo: { rule: "demo-runs-start-on-stand-ins", may: ["core", "contract", "storage", "pulse", "jobs", "start", "stand-ins"] },
  cli: { rule: "cli-is-the-top", may: "*" },
  generated: { rule: "generated-prisma-client", may: [] },
};

/** Folders whose code a bridge process loads, and the libraries they must never import. */
const THIN = ["core", "contract", "routing", "pulse", "bridge"];
const HEAVY = ["@prisma/", "prisma", "pg", "express", "helmet", "@bull-board/", "taskcluster-client", "simple-git"];

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(type\s+)?(?:[^"';]*?\sfrom\s*)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sourceFiles(full);
    return /\.(ts|mts)$/.test(entry.name) ? [full] : [];
  });
}

/** Folder of src/ a path lies in ("" for src/cli.ts and other top-level files: the entry point). */
function layerOf(relative) {
  const parts = relative.split(path.sep);
  return parts.length > 2 ? parts[1] : "cli";
}

export function checkLayers(root) {
  const src = path.join(root, "src");
  const problems = [];
  const folderEdges = new Map();
  for (const file of sourceFiles(src)) {
    const relative = path.relative(root, file);
    const from = layerOf(relative);
    const layer = LAYERS[from];
    if (!layer) {
      problems.push(`unknown-layer: ${relative} is in src/${from}/, which docs/ARCHITECTURE.md does not name (add it to scripts/check-layers.mjs)`);
      continue;
    }
    // Comments may name other layers; only code counts.
    const code = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    for (const match of code.matchAll(IMPORT)) {
      const specifier = match[2] ?? match[3];
      if (specifier.startsWith(".")) {
        const target = path.relative(root, path.resolve(path.dirname(file), specifier));
        if (!target.startsWith(`src${path.sep}`)) {
          problems.push(`src-imports-only-src: ${relative} imports ${target}`);
          continue;
        }
        const to = layerOf(target);
        if (to === from) continue;
        if (!folderEdges.has(from)) folderEdges.set(from, new Set());
        folderEdges.get(from).add(to);
        if (layer.may !== "*" && !layer.may.includes(to)) {
          problems.push(
            `${layer.rule}: ${relative} imports ${target} (src/${from}/ may import ${layer.may.length ? layer.may.map((l) => `src/${l}/`).join(", ") : "nothing of ours"})`,
          );
        }
      } else if (THIN.includes(from) && !match[1] && HEAVY.some((lib) => specifier === lib || specifier.startsWith(lib.endsWith("/") ? lib : `${lib}/`))) {
        problems.push(`bridge-loads-no-heavy-library: ${relative} imports ${specifier} (src/${from}/ is loaded by the bridge)`);
      }
    }
  }
  const cycle = findCycle(folderEdges);
  if (cycle) problems.push(`no-cycles-between-folders: ${cycle.map((f) => `src/${f}/`).join(" → ")}`);
  return problems;
}

function findCycle(edges) {
  const state = new Map();
  const stack = [];
  const visit = (node) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of edges.keys()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url)));
  const problems = checkLayers(root);
  for (const problem of problems) console.error(`layer rule broken: ${problem}`);
  if (problems.length) {
    console.error(`${problems.length} import(s) break the layers of docs/ARCHITECTURE.md`);
    process.exit(1);
  }
  console.log("layers: every import of src/ follows docs/ARCHITECTURE.md");
}
