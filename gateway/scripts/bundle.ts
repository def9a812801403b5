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
import { build, type Plugin } from "esbuild";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outfile = process.argv[2] ? resolve(process.argv[2]) : `${root}/dist/cli.mjs`;

/**
 * mqtt-packet traces every packet it parses or writes through the `debug` package: about ten
 * calls per message, each gathering its arguments into an array before it finds tracing
 * off. Under a flood that was 2 % of the gateway's CPU and garbage for the collector. The
 * bundle gets a `debug` that is always off; to trace MQTT packets, run the gateway from
 * source with DEBUG=mqtt-packet:* (`pnpm gateway run`).
 */
const debugOff: Plugin = {
  name: "debug-off",
  setup(b) {
    b.onResolve({ filter: /^debug$/ }, () => ({ path: "debug", namespace: "debug-off" }));
    b.onLoad({ filter: /.*/, namespace: "debug-off" }, () => ({
      contents: "const off = function () {}; off.enabled = false; off.extend = () => off; module.exports = () => off;",
      loader: "js",
    }));
  },
};
/**
 * mqtt-packet's BufferList slices a new Buffer view for every byte or number it reads: the
 * bundle's copy gets the fast paths of src/sources/mqtt/buffer-list-fast.ts, added as the
 * module loads.
 */
const fastBufferList: Plugin = {
  name: "fast-buffer-list",
  setup(b) {
    b.onLoad({ filter: /[\\/]bl[\\/]BufferList\.js$/ }, async (args) => ({
      contents:
        `${await readFile(args.path, "utf8")}\n` +
        `require(${JSON.stringify(`${root}src/sources/mqtt/buffer-list-fast.ts`)})` +
        ".addFastPaths(BufferList.prototype, new BufferList());\n",
      loader: "js",
    }));
  },
};
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
  plugins: [debugOff, fastBufferList],
});
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
console.log(`${outfile} written (${(bytes / 1024 / 1024).toFixed(1)} MiB with its source map)`);
