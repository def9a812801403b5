#!/usr/bin/env node
// Bundle one component's CLI into a single ESM file for the container images and the Pi:
// the workspace's TypeScript (@datalab/* and relative imports) is compiled and inlined, npm
// packages stay external and load from the node_modules that `pnpm deploy --prod` lays out.
// A bundle starts in a fraction of the time tsx needs to compile the sources at every start,
// which matters on a Raspberry Pi.
//
// usage: node deploy/docker/bundle.mjs <gateway|hub|sensors> <deployed package folder> [--inline-npm]
// writes <folder>/dist/cli.mjs; the folder holds the package in its source layout (what
// `pnpm deploy` lays out), so files the code reads next to itself are found. With
// --inline-npm the npm packages are bundled too (but optional native ones), so the bundle
// runs in place in the workspace, whose strict node_modules hide transitive packages (the
// bench runs the hub so).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const [component, deployed, mode] = process.argv.slice(2);
const inlineNpm = mode === "--inline-npm";
if (!["gateway", "hub", "sensors"].includes(component ?? "") || !deployed || (mode !== undefined && !inlineNpm)) {
  process.stderr.write(
    "usage: node deploy/docker/bundle.mjs <gateway|hub|sensors> <deployed package folder> [--inline-npm]\n",
  );
  process.exit(2);
}

const externalNpm = {
  name: "external-npm",
  setup(b) {
    // Bare imports that are not workspace packages: leave them to node_modules at run time.
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith("@datalab/") ? undefined : { path: args.path, external: true },
    );
  },
};

// `import.meta.url` in a bundle names the bundle, not the module it was written in. The
// component's own files read files next to them (the hub's migrations/, the dashboard's
// public/), so each use is rewritten to the module's original place relative to the bundle:
// the deployed package keeps the source layout (pnpm deploy copies it whole).
const pkgDir = resolve(root, component);
const outfile = join(resolve(deployed), "dist", "cli.mjs");
const sourceUrls = {
  name: "source-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      if (!text.includes("import.meta.url")) return undefined;
      if (!args.path.startsWith(pkgDir + sep)) {
        throw new Error(
          `${relative(root, args.path)} uses import.meta.url outside ${component}/: ` +
            "bundle.mjs does not know where it lives at run time",
        );
      }
      // Where the module sits relative to dist/cli.mjs in the deployed package.
      const rel = relative(join(pkgDir, "dist"), args.path).split(sep).join("/");
      return {
        contents: text.replace(/\bimport\.meta\.url\b/g, `new URL(${JSON.stringify(rel)}, import.meta.url).href`),
        loader: "ts",
      };
    });
  },
};

const OPTIONAL_NATIVE = [
  "pg-native",
  "kerberos",
  "snappy",
  "socks",
  "aws4",
  "mongodb-client-encryption",
  "gcp-metadata",
  "@mongodb-js/zstd",
  "@aws-sdk/credential-providers",
];

await build({
  entryPoints: [join(root, component, "src/cli.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  plugins: inlineNpm ? [sourceUrls] : [externalNpm, sourceUrls],
  // The drivers' optional native and cloud add-ons, loaded only when configured.
  external: inlineNpm ? OPTIONAL_NATIVE : [],
  logLevel: "warning",
  banner: {
    js:
      "// Built from the Wireless Sensor DataLab workspace by deploy/docker/bundle.mjs.\n" +
      // Bundled CommonJS packages call require(); give the ES module one.
      (inlineNpm
        ? "import { createRequire as __datalabRequire } from 'node:module'; " +
          "const require = __datalabRequire(import.meta.url);"
        : ""),
  },
});
