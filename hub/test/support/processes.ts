import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { onFreePort, waitFor } from "@datalab/shared/testing";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const HUB_CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

/**
 * The parent's environment without any DATALAB_* (CI sets DATALAB_MONGO_URL): children get only
 * what the test gives.
 */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DATALAB_")) env[k] = v;
  return { ...env, ...extra };
}

export interface Child {
  proc: ChildProcess;
  /** stderr (the JSON log lines), bounded to the last 200 KB. */
  log(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Run a TypeScript entry point with tsx, as `pnpm hub` does. */
export function spawnTs(script: string, args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const keep = (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-200_000);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    proc,
    log: () => log,
    exited,
    async kill(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await exited;
    },
  };
}

export interface HubChild extends Child {
  port: number;
  /** A counter's value from the hub's /metrics, summed over the given labels. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  health(): Promise<{ ok: boolean; consumers: { sink: string; state: string }[] }>;
}

/**
 * `tsx hub/src/cli.ts run` with the given configuration; resolves once its consumers run. On a
 * port of its own, chosen again if another process took it before the hub bound it.
 */
export async function startHubProcess(env: Record<string, string>, expectSinks = 1): Promise<HubChild> {
  return onFreePort((port) => launchHub(env, port, expectSinks));
}

async function launchHub(env: Record<string, string>, port: number, expectSinks: number): Promise<HubChild> {
  const child = spawnTs(HUB_CLI, ["run"], { ...env, DATALAB_HTTP_PORT: String(port), DATALAB_HTTP_HOST: "127.0.0.1" });
  const base = `http://127.0.0.1:${port}`;
  const hub: HubChild = {
    ...child,
    port,
    async metric(name, labels = {}) {
      const text = await (await fetch(`${base}/metrics`)).text();
      return sumMetric(text, name, labels);
    },
    async health() {
      return (await (await fetch(`${base}/healthz`)).json()) as Awaited<ReturnType<HubChild["health"]>>;
    },
  };
  const ready = await waitFor(
    async () => {
      // An exit ends the wait at once (its log says why: a port taken, a bad setting).
      if (child.proc.exitCode !== null) return "exited";
      const h = await hub.health();
      return h.consumers.length === expectSinks && h.consumers.every((c) => c.state === "running");
    },
    "hub process to run its consumers",
    30_000,
    100,
  );
  if (ready === "exited") throw new Error(`hub exited with ${child.proc.exitCode}: ${child.log().slice(-2000)}`);
  return hub;
}

/** Sum a Prometheus text-format metric over the series matching `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
