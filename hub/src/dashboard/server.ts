import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Route } from "@datalab/shared";

/** The page, its scripts and styles: plain files, no build step. */
export const PUBLIC_DIR = fileURLToPath(new URL("./public/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

/** uPlot is served from its npm package, never a CDN: the dashboard works on an offline hub. */
export function uplotDistDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("uplot/dist/uPlot.esm.js"));
}

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

function load(path: string): StaticFile {
  const body = readFileSync(path);
  const type = TYPES[extname(path)];
  if (!type)
    throw new Error(`dashboard file ${path}: no content type known for ${extname(path) || "a file without extension"}`);
  return { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

// Scripts and styles come from this origin only; uPlot sets styles through the DOM (allowed).
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
    "frame-ancestors 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * One exact route per file, read into memory once at start (the whole dashboard is a few
 * tens of kilobytes): `/` is index.html, `/vendor/*` is uPlot's dist. Answers carry an ETag,
 * so a reload costs a 304.
 */
export function createDashboardRoutes(opts: { publicDir?: string; uplotDir?: string } = {}): Record<string, Route> {
  const dir = opts.publicDir ?? PUBLIC_DIR;
  const files = new Map<string, StaticFile>();
  for (const p of listFiles(dir)) files.set(`/${relative(dir, p).split(sep).join("/")}`, load(p));
  const uplot = opts.uplotDir ?? uplotDistDir();
  files.set("/vendor/uPlot.esm.js", load(join(uplot, "uPlot.esm.js")));
  files.set("/vendor/uPlot.min.css", load(join(uplot, "uPlot.min.css")));
  const index = files.get("/index.html");
  if (!index) throw new Error(`dashboard: ${dir} has no index.html`);
  files.set("/", index);

  const routes: Record<string, Route> = {};
  for (const [path, f] of files) {
    routes[path] = (req, res) => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      const headers = { ...SECURITY_HEADERS, etag: f.etag, "cache-control": "no-cache" };
      if (req.headers["if-none-match"] === f.etag) {
        res.writeHead(304, headers).end();
        return;
      }
      res.writeHead(200, { ...headers, "content-type": f.type, "content-length": String(f.body.length) });
      res.end(req.method === "HEAD" ? undefined : f.body);
    };
  }
  return routes;
}
