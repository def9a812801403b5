import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { fileURLToPath } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { MQTT_URL, NATS_URL, tempDir, uniqueId, waitFor } from "@datalab/shared/testing";
import { loadGatewayConfig, type GatewayConfig } from "../../src/config";

export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
export const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

/** Names of one test's world: its own NATS prefix (so its own stream), topics, data dir. */
export interface TestWorld {
  id: string;
  dataDir: string;
  topic: string;
  env: Record<string, string>;
}

export function testWorld(env: Record<string, string> = {}): TestWorld {
  const id = uniqueId("gw");
  const dataDir = tempDir("datalab-gw-");
  return {
    id,
    dataDir,
    topic: `${id}/sensors`,
    env: {
      DATALAB_GATEWAY_ID: id,
      DATALAB_NATS_PREFIX: id,
      DATALAB_NATS_URL: NATS_URL,
      DATALAB_MQTT_URL: MQTT_URL,
      DATALAB_MQTT_TOPICS: `${id}/sensors/#`,
      DATALAB_MQTT_RTL433_TOPICS: `${id}/rtl_433/+/events`,
      DATALAB_DATA_DIR: dataDir,
      DATALAB_HTTP_PORT: "0",
      DATALAB_HTTP_HOST: "127.0.0.1",
      DATALAB_LOG_LEVEL: "info",
      ...env,
    },
  };
}

export function worldConfig(w: TestWorld, env: Record<string, string> = {}): GatewayConfig {
  return loadGatewayConfig({ env: { ...w.env, ...env } });
}

/** The gateway as a real child process (`node --import tsx gateway/src/cli.ts run`): kill -9 hits it, not a wrapper. */
export class GatewayProcess {
  proc: ChildProcess | undefined;
  log = "";
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;

  /** `command`: another way to run the gateway (a release's node and bundle, an emulator). */
  constructor(
    private readonly env: Record<string, string>,
    private readonly command: { cmd: string; args: string[]; cwd: string } = {
      cmd: process.execPath,
      args: ["--import", "tsx", CLI, "run"],
      cwd: REPO_ROOT,
    },
  ) {}

  start(): this {
    this.log = "";
    const proc = spawn(this.command.cmd, this.command.args, {
      cwd: this.command.cwd,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    // Bounded: a test reads the log, but a chatty run must not grow memory without end.
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-2_000_000);
    };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);
    this.exit = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    return this;
  }

  /** The HTTP port, read from the "gateway started" log line (the gateway listens on port 0). */
  async ready(timeoutMs = 20_000): Promise<number> {
    // A gateway that exits at start fails the wait at once (waitFor would take a thrown
    // error for "not yet" and wait out its deadline).
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void this.exit?.then((e) => (exited = e));
    const port = await waitFor(
      () => {
        const m = /"http":(\d+)[^\n]*"gateway started"/.exec(this.log);
        return m ? Number(m[1]) : exited ? -1 : undefined;
      },
      "the gateway process to start",
      timeoutMs,
    );
    if (port < 0)
      throw new Error(`gateway exited early (code ${exited!.code}, signal ${exited!.signal}):\n${this.log}`);
    return port;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null)
      return { code: this.proc?.exitCode ?? null, signal: this.proc?.signalCode ?? null };
    this.proc.kill(signal);
    return this.exit!;
  }

  /** Log lines as objects (pino JSON), skipping anything else. */
  lines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.log.split("\n")) {
      if (!l.startsWith("{")) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // a line cut by the bound above
      }
    }
    return out;
  }
}

export async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return (await res.json()) as T;
}

/** A metric's value from the Prometheus text (summed over matching label sets). */
export async function scrape(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export async function mqttClient(opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(MQTT_URL, { protocolVersion: 5, reconnectPeriod: 500, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  return c;
}

/** Publish `{"name": sensor, "value": i}` for i in [from, to), waiting for each QoS>0 ack. */
export async function publishRange(
  c: MqttClient,
  topic: string,
  from: number,
  to: number,
  qos: 0 | 1 = 0,
): Promise<void> {
  for (let i = from; i < to; i++) {
    await c.publishAsync(topic, `{"name":"sensor1","value":${i}}`, { qos });
  }
}

/** Run `cli.ts <args>` to completion (e.g. `status --json`). */
export function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What the outbox file in `dataDir` says was committed (seqs 1..n), read the way a post-mortem would. */
export function committedInFile(dataDir: string): number {
  const db = new Database(join(dataDir, "outbox.db"), { readonly: true });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: string } | undefined;
    return row ? Number(row.value) - 1 : 0;
  } finally {
    db.close();
  }
}
