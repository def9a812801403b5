/**
 * Bundle the gateway into one JavaScript file, `gateway/dist/cli.mjs`, to run with plain
 * `node` on a Pi: no TypeScript loader at run time. tsx's loader runs in a thread of its own
 * that alone takes about 30 MiB of RSS, half of the gateway's budget.
 *
 *   pnpm --filter @datalab/gateway bundle
 *   node --max-semi-space-size=1 --max-old-space-size=48 gateway/dist/cli.mjs run
 *
 * An argument names another output file (deploy/release.ts bundles into its release folder).
 *
 * Native addons stay outside the bundle and load from node_modules.
 */
import { build } from "esbuild";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { debugOff, fastBufferList, mqttClient } from "./plugins";

const root = fileURLToPath(new URL("..", import.meta.url));
const outfile = process.argv[2] ? resolve(process.argv[2]) : `${root}/dist/cli.mjs`;

const result = await build({
  entryPoints: [`${root}/src/cli.ts`],
  outfile,
  bundle: true,
  // Identifiers kept: readable stack traces and CPU profiles cost a few kB.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: "linked",
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "serialport", "@serialport/*"],
  // Bundled CommonJS packages call require(); give the ES module one.
  banner: {
    js:
      "import { createRequire as __datalabRequire } from 'node:module'; " +
      "const require = __datalabRequire(import.meta.url);",
  },
  logLevel: "warning",
  metafile: true,
  plugins: [debugOff, fastBufferList, mqttClient],
});
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
console.log(`${outfile} written (${(bytes / 1024 / 1024).toFixed(1)} MiB with its source map)`);
