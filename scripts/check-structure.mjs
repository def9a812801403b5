#!/usr/bin/env node
// The code's shape, checked on every run of `pnpm lint`: no line over 120 characters, no source
// file over 400 lines (tests, benches and generated files aside), and no import cycle between
// folders (a folder may import its subfolders or its siblings, never in a ring).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const MAX_LINE = 120;
const MAX_FILE_LINES = 400;
const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root })
  .toString()
  .split("\0")
  .filter((f) => /\.(ts|mjs|cjs|js)$/.test(f));
const problems = [];
const isSource = (f) => /^(gateway|hub|sensors|shared)\/src\//.test(f) && !/\/public\//.test(f);

const edges = new Map();
const addEdge = (from, to) => {
  if (from === to) return;
  if (!edges.has(from)) edges.set(from, new Set());
  edges.get(from).add(to);
};
const packageRoot = (name) => `${name}/src`;

for (const f of files) {
  let text;
  try {
    text = readFileSync(join(root, f), "utf8");
  } catch {
    continue; // deleted in the work tree
  }
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.length > MAX_LINE) problems.push(`${f}:${i + 1}: line of ${line.length} characters (at most ${MAX_LINE})`);
  });
  if (isSource(f) && lines.length - 1 > MAX_FILE_LINES) {
    problems.push(`${f}: ${lines.length - 1} lines (at most ${MAX_FILE_LINES} in a source file)`);
  }
  if (!isSource(f)) continue;
  const dir = dirname(f);
  const specifiers = /(?:^|\n)\s*(?:import|export)[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of text.matchAll(specifiers)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith(".")) addEdge(dir, dirname(relative(root, resolve(root, dir, spec))));
    else if (spec.startsWith("@datalab/")) addEdge(dir, packageRoot(spec.slice("@datalab/".length).split("/")[0]));
  }
}

// Tarjan's strongly connected components: every component of more than one folder is a cycle.
let index = 0;
const stack = [];
const info = new Map();
const cycles = [];
function visit(v) {
  info.set(v, { index, low: index, onStack: true });
  index += 1;
  stack.push(v);
  for (const w of edges.get(v) ?? []) {
    if (!info.has(w)) {
      visit(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).onStack) {
      info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
    }
  }
  if (info.get(v).low === info.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  }
}
for (const v of edges.keys()) if (!info.has(v)) visit(v);
for (const c of cycles) {
  const links = c.flatMap((a) => [...(edges.get(a) ?? [])].filter((b) => c.includes(b)).map((b) => `${a} → ${b}`));
  problems.push(`import cycle between folders: ${links.join(", ")}`);
}

if (problems.length > 0) {
  process.stderr.write(`${problems.join("\n")}\n${problems.length} problem(s)\n`);
  process.exit(1);
}
process.stdout.write(
  `structure: ${files.length} files, lines ≤ ${MAX_LINE}, source files ≤ ${MAX_FILE_LINES} lines, no folder cycles\n`,
);
