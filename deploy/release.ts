/**
 * A self-contained gateway release for a Linux machine with no compiler and no Node.js:
 *
 *   pnpm release gateway --arch arm64|x64 [--out dist]
 *
 * writes `<out>/datalab-gateway-<version>-linux-<arch>.tar.gz` and its `.sha256`. The tarball
 * holds one folder: `bin/node` (Node 22 LTS for the target, from the npm package
 * `node-linux-<arch>`), `dist/cli.mjs` (the gateway bundle, gateway/scripts/bundle.ts), the
 * native modules compiled for the target under `node_modules/`, `deploy/pi/` (install.sh, the
 * unit, udev rules, config examples), `RELEASE` (what it was built from) and `OUTBOX_FORMAT`
 * (the outbox format its gateway writes, which install.sh --rollback compares).
 * `deploy/pi/install.sh --from <tarball>` installs it.
 *
 * better-sqlite3 is compiled for the target with node-gyp against that Node's headers (Debian's
 * g++-aarch64-linux-gnu for arm64); serialport's binding ships prebuilt N-API binaries for both.
 * Downloads and compiled modules are cached under .cache/release/, keyed by their versions.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { OUTBOX_FORMAT } from "../gateway/src/outbox/schema";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CACHE = join(ROOT, ".cache/release");
/** The Node.js the release runs on: an LTS line, pinned so a release is reproducible. */
export const RELEASE_NODE_VERSION = "22.23.5";
const ARCHES = {
  arm64: { uname: "aarch64", cc: "aarch64-linux-gnu-gcc", cxx: "aarch64-linux-gnu-g++" },
  x64: { uname: "x86_64", cc: "gcc", cxx: "g++" },
} as const;
type Arch = keyof typeof ARCHES;
/** Packages the bundle leaves to node_modules (gateway/scripts/bundle.ts `external`). */
const RUNTIME_ROOTS = ["better-sqlite3", "serialport"];
/** Dependencies used only to build or download a native module, never at run time. */
const BUILD_ONLY = new Set(["prebuild-install", "node-addon-api", "node-gyp"]);

class ReleaseError extends Error {
  override name = "ReleaseError";
}

function log(msg: string): void {
  process.stderr.write(`[release] ${msg}\n`);
}

/** Run a command; its output is kept and shown only when it fails. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let size = 0;
    const keep = (d: Buffer) => {
      // The last 64 kB are enough to see why a compiler failed.
      out.push(d);
      size += d.length;
      while (size > 65_536 && out.length > 1) size -= out.shift()!.length;
    };
    p.stdout.on("data", keep);
    p.stderr.on("data", keep);
    p.on("error", (err) => reject(new ReleaseError(`${cmd}: ${err.message}`)));
    p.on("close", (code) => {
      const text = Buffer.concat(out).toString();
      if (code === 0) resolvePromise(text);
      else reject(new ReleaseError(`${cmd} ${args.join(" ")} exited ${code}:\n${text}`));
    });
  });
}

/** The npm package `node-linux-<arch>` unpacked (its bin/node and include/node). */
async function nodePackage(arch: Arch): Promise<string> {
  const dir = join(CACHE, `node-linux-${arch}-${RELEASE_NODE_VERSION}`);
  if (existsSync(join(dir, "package/bin/node"))) return join(dir, "package");
  mkdirSync(CACHE, { recursive: true });
  const tgz = join(CACHE, `node-linux-${arch}-${RELEASE_NODE_VERSION}.tgz`);
  if (!existsSync(tgz)) {
    log(`downloading node-linux-${arch}@${RELEASE_NODE_VERSION} from the npm registry`);
    await run("npm", ["pack", `node-linux-${arch}@${RELEASE_NODE_VERSION}`, "--pack-destination", CACHE]);
  }
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await run("tar", ["-xzf", tgz, "-C", tmp]);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return join(dir, "package");
}

function nodeGyp(): string {
  const candidates = [
    join(dirname(realpathSync(process.execPath)), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
    "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
    "/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new ReleaseError("node-gyp not found (it comes with npm)");
  return found;
}

/** better-sqlite3's addon compiled for the target's CPU and Node ABI; cached by versions. */
async function betterSqlite(arch: Arch, src: string, nodeDir: string): Promise<string> {
  const version = (JSON.parse(readFileSync(join(src, "package.json"), "utf8")) as { version: string }).version;
  const out = join(
    CACHE,
    "native",
    `better-sqlite3-${version}-node-${RELEASE_NODE_VERSION}-linux-${arch}`,
    "better_sqlite3.node",
  );
  if (existsSync(out)) return out;
  const { cc, cxx } = ARCHES[arch];
  const work = join(CACHE, "build", `better-sqlite3-${arch}`);
  rmSync(work, { recursive: true, force: true });
  cpSync(src, work, {
    recursive: true,
    dereference: true,
    filter: (p) => !p.startsWith(join(src, "build")) && !p.startsWith(join(src, "node_modules")),
  });
  // One job: SQLite is one large file anyway, and a test run builds this beside other tests.
  log(`compiling better-sqlite3 ${version} for linux-${arch}, Node ${RELEASE_NODE_VERSION} (a minute or more)`);
  await run(
    process.execPath,
    [nodeGyp(), "rebuild", "--release", `--nodedir=${nodeDir}`, `--arch=${arch}`, "--jobs=1"],
    {
      cwd: work,
      // The machine's npmrc may name another Node's headers; the target's win.
      env: { CC: cc, CXX: cxx, npm_config_nodedir: nodeDir, npm_config_arch: arch, npm_config_target_arch: arch },
    },
  );
  mkdirSync(dirname(out), { recursive: true });
  cpSync(join(work, "build/Release/better_sqlite3.node"), `${out}.tmp`);
  renameSync(`${out}.tmp`, out);
  rmSync(work, { recursive: true, force: true });
  return out;
}

/** Node's lookup of a package folder from `fromDir` (package.json itself may not be exported). */
function packageDir(name: string, fromDir: string): string {
  for (let d = fromDir; ; d = dirname(d)) {
    const candidate = join(d, "node_modules", name, "package.json");
    if (existsSync(candidate)) return dirname(realpathSync(candidate));
    if (dirname(d) === d)
      throw new ReleaseError(`${name} is not installed for ${relative(ROOT, fromDir) || "."}: run pnpm install`);
  }
}

interface Placed {
  name: string;
  real: string;
  target: string;
}

/**
 * The run-time dependency closure of the bundle's externals, laid out as a flat node_modules
 * (nested only where two versions of one name meet), resolved from the gateway's installed
 * workspace so the versions are the lockfile's.
 */
function runtimePackages(): Placed[] {
  const top = new Map<string, string>();
  const placed: Placed[] = [];
  const visit = (name: string, fromDir: string, parentTarget: string) => {
    if (BUILD_ONLY.has(name)) return;
    const real = packageDir(name, fromDir);
    const seen = top.get(name);
    if (seen === real) return;
    const target = seen === undefined ? join("node_modules", name) : join(parentTarget, "node_modules", name);
    if (seen === undefined) top.set(name, real);
    if (placed.some((p) => p.target === target)) return;
    placed.push({ name, real, target });
    const pkg = JSON.parse(readFileSync(join(real, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys({ ...pkg.dependencies })) visit(dep, real, target);
  };
  for (const name of RUNTIME_ROOTS) visit(name, join(ROOT, "gateway"), "");
  return placed;
}

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export async function buildRelease(arch: Arch, outDir: string): Promise<string> {
  const gatewayPkg = JSON.parse(readFileSync(join(ROOT, "gateway/package.json"), "utf8")) as { version: string };
  const name = `datalab-gateway-${gatewayPkg.version}-linux-${arch}`;
  const stage = join(CACHE, "stage", arch);
  const app = join(stage, name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });

  const nodeDir = await nodePackage(arch);
  log("bundling the gateway");
  await run(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "gateway/scripts/bundle.ts"), join(app, "dist/cli.mjs")]);

  for (const p of runtimePackages()) {
    const dest = join(app, p.target);
    // Each package's own files only (its dependencies are placed by runtimePackages), and no
    // build output of this machine: better-sqlite3's addon is compiled for the target below.
    const skip = p.name === "better-sqlite3" ? /^(node_modules|build|deps|src)(\/|$)/ : /^(node_modules|build)(\/|$)/;
    cpSync(p.real, dest, { recursive: true, dereference: true, filter: (src) => !skip.test(relative(p.real, src)) });
    if (p.name === "@serialport/bindings-cpp") {
      // node-gyp-build picks build/ before prebuilds/: only the target's prebuilt binary stays.
      for (const d of readdirSync(join(dest, "prebuilds")))
        if (d !== `linux-${arch}`) rmSync(join(dest, "prebuilds", d), { recursive: true });
    }
    if (p.name === "better-sqlite3") {
      const addon = await betterSqlite(arch, p.real, nodeDir);
      mkdirSync(join(dest, "build/Release"), { recursive: true });
      cpSync(addon, join(dest, "build/Release/better_sqlite3.node"));
    }
  }

  mkdirSync(join(app, "bin"));
  cpSync(join(nodeDir, "bin/node"), join(app, "bin/node"));
  cpSync(join(nodeDir, "LICENSE"), join(app, "bin/node.LICENSE"));
  cpSync(join(ROOT, "deploy/pi"), join(app, "deploy/pi"), { recursive: true });
  cpSync(join(ROOT, "docs/raspberry-pi.md"), join(app, "docs/raspberry-pi.md"));
  const manifest = { name: "@datalab/gateway", version: gatewayPkg.version, private: true, type: "module" };
  writeFileSync(join(app, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  const release = {
    component: "gateway",
    version: gatewayPkg.version,
    os: "linux",
    arch,
    uname: ARCHES[arch].uname,
    node: RELEASE_NODE_VERSION,
  };
  writeFileSync(join(app, "RELEASE"), `${JSON.stringify(release, null, 2)}\n`);
  // A rollback to a release reading an older format converts the outbox first (install.sh).
  writeFileSync(join(app, "OUTBOX_FORMAT"), `${OUTBOX_FORMAT}\n`);

  mkdirSync(outDir, { recursive: true });
  const tarball = join(outDir, `${name}.tar.gz`);
  log(`writing ${relative(ROOT, tarball)}`);
  await run("tar", [
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-czf",
    `${tarball}.tmp`,
    "-C",
    stage,
    name,
  ]);
  renameSync(`${tarball}.tmp`, tarball);
  writeFileSync(`${tarball}.sha256`, `${await sha256(tarball)}  ${name}.tar.gz\n`);
  rmSync(stage, { recursive: true, force: true });
  log(`${relative(ROOT, tarball)}: ${(statSync(tarball).size / 1024 / 1024).toFixed(1)} MiB`);
  return tarball;
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { arch: { type: "string" }, out: { type: "string" } },
  });
  if (positionals[0] !== "gateway" || positionals.length !== 1)
    throw new ReleaseError("usage: pnpm release gateway --arch arm64|x64 [--out dist]");
  const arch = values.arch ?? "arm64";
  if (!(arch in ARCHES)) throw new ReleaseError(`--arch ${arch}: one of ${Object.keys(ARCHES).join(", ")}`);
  process.stdout.write(`${await buildRelease(arch as Arch, resolve(values.out ?? join(ROOT, "dist")))}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`[release] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
