#!/usr/bin/env node
// The front door's two commands, `npm run demo` and `npm test`, on a machine that has
// Node.js and npm but not pnpm: install the pinned pnpm, install the workspace (frozen
// lockfile), make sure the servers the job needs answer, then run the job with pnpm.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const job = process.argv[2];
const rest = process.argv.slice(3);
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const pnpmVersion = pkg.packageManager.split("@")[1];

function say(msg) {
  process.stderr.write(`[datalab] ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function pnpmCommand() {
  try {
    const v = execFileSync("pnpm", ["--version"], { encoding: "utf8" }).trim();
    if (v === pnpmVersion) return "pnpm";
    say(`pnpm ${v} found, the project pins ${pnpmVersion}`);
  } catch {
    say(`pnpm not found`);
  }
  // corepack is not reliable everywhere; npm is.
  say(`installing pnpm ${pnpmVersion} with npm`);
  if (run("npm", ["install", "-g", `pnpm@${pnpmVersion}`]) !== 0) {
    say("global install refused; using npx instead");
    return null;
  }
  return "pnpm";
}

function pnpm(args) {
  const p = (pnpmCommand.cached ??= pnpmCommand() ?? "npx");
  return p === "npx" ? run("npx", ["--yes", `pnpm@${pnpmVersion}`, ...args]) : run("pnpm", args);
}

function answers(port) {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

async function ensureServices() {
  const missing = [];
  for (const [port, name] of [
    [1883, "Mosquitto"],
    [4222, "NATS"],
    [5432, "PostgreSQL"],
  ]) {
    if (!(await answers(port))) missing.push(`${name} (${port})`);
  }
  if (missing.length === 0) return;
  const canInstall = process.platform === "linux" && existsSync("/usr/bin/apt-get");
  if (!canInstall) {
    say(
      `not answering on 127.0.0.1: ${missing.join(", ")}. ` +
        `Start them (see README, "Servers"), or use Docker: deploy/compose.yaml.`,
    );
    process.exit(1);
  }
  say(`not answering: ${missing.join(", ")}; installing/starting them with scripts/services.sh`);
  if (run("bash", [join(root, "scripts/services.sh")]) !== 0) process.exit(1);
}

if (!["test", "demo", "install"].includes(job)) {
  say("usage: node scripts/bootstrap.mjs test|demo|install [args]");
  process.exit(2);
}
/** Run the job as a child, passing Ctrl-C and SIGTERM on, so it can stop cleanly. */
function runJob(cmd, args, after = (code) => code) {
  const child = spawn(cmd, args, { stdio: "inherit", cwd: root });
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(after(code ?? (signal ? 1 : 0))));
}

// `install` passes its own arguments on (CI installs with --ignore-scripts, then builds the natives apart).
const installArgs = job === "install" ? rest : [];
// A node_modules laid out by another store or pnpm is rebuilt rather than refused (pnpm asks
// first, and without a terminal it aborts).
const purge = "--config.confirmModulesPurge=false";
if (pnpm(["install", "--frozen-lockfile", "--prefer-offline", "--reporter=append-only", purge, ...installArgs]) !== 0)
  process.exit(1);
if (job === "install") process.exit(0);
if (job === "test") {
  await ensureServices();
  const report = join(root, "test-results", "vitest.json");
  rmSync(report, { force: true });
  runJob(
    process.execPath,
    [
      join(root, "node_modules/vitest/vitest.mjs"),
      "run",
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${report}`,
      ...rest,
    ],
    (code) => {
      // One plain closing line with the counts, whatever the reporter printed above it.
      try {
        const r = JSON.parse(readFileSync(report, "utf8"));
        process.stdout.write(
          `\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped\n`,
        );
      } catch {
        say("no test report was written");
      }
      return code;
    },
  );
} else {
  runJob(process.execPath, ["--import", "tsx", join(root, "deploy/demo.ts"), ...rest]);
}
