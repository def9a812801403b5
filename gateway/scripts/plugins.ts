/**
 * The esbuild plugins of the gateway's bundle (scripts/bundle.ts): what the Pi runs differs
 * from the development path only where they say, and only in cost.
 */
import { build, type BuildResult, type Plugin } from "esbuild";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { frameParse } from "../src/sources/mqtt/framed-parse";
import { sliceParse } from "../src/sources/mqtt/sliced-parse";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * mqtt-packet traces every packet it parses or writes through the `debug` package: about ten
 * calls per message, each gathering its arguments into an array before it finds tracing
 * off. Under a flood that was 2 % of the gateway's CPU and garbage for the collector. The
 * bundle gets a `debug` that is always off; to trace MQTT packets, run the gateway from
 * source with DEBUG=mqtt-packet:* (`pnpm gateway run`).
 */
export const debugOff: Plugin = {
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
export const fastBufferList: Plugin = {
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
/**
 * mqtt.js parses what the socket read in slices (src/sources/mqtt/sliced-parse.ts), with the
 * parser of src/sources/mqtt/framed-parse.ts.
 */
export const mqttClient: Plugin = {
  name: "mqtt-client",
  setup(b) {
    b.onLoad({ filter: /[\\/]mqtt[\\/]build[\\/]lib[\\/]client\.js$/ }, async (args) => ({
      contents: frameParse(sliceParse(await readFile(args.path, "utf8")), `${root}src/sources/mqtt/framed-parse.ts`),
      loader: "js",
    }));
  },
};

/**
 * `contents` (a module resolved from the gateway's folder) bundled into `outfile` as the
 * gateway's bundle bundles its npm packages, with `plugins`: how tests and benchmarks get the
 * bundle's copy of a package without building the whole gateway.
 */
export function bundleLikeGateway(contents: string, outfile: string, plugins: Plugin[]): Promise<BuildResult> {
  return build({
    stdin: { contents, resolveDir: root, loader: "js" },
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
    plugins,
    logLevel: "error",
  });
}
