/**
 * Test harness shared by every package's tests: real servers on loopback, unique names so
 * test files running in parallel never see each other's data, and waiting on conditions
 * instead of sleeping.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { positionalMessage, type WireMessage } from "../src/batch";
import type { WireFormat, WireMessageInput } from "../src/wire-encode";
import { subjects } from "../src/subjects";

/**
 * A test oracle: what the wire contract says a message is as text in `format`, its readings'
 * seqs from `firstSeq` on: JSON.stringify of the WireMessage (format 2: of its fields as arrays).
 */
export function wireMessageText(m: WireMessageInput, firstSeq: number, format: WireFormat): string {
  const w: WireMessage = {
    source: m.source,
    receivedAt: m.receivedAt,
    payload: m.payload,
    encoding: m.encoding,
    readings: m.readings.map((r, k) => ({
      seq: firstSeq + k,
      sensorId: r.sensorId,
      metric: r.metric,
      value: r.value,
      unit: r.unit ?? null,
      ts: r.ts,
      ...(r.rxWindow === undefined ? {} : { rxWindow: r.rxWindow }),
    })),
  };
  return JSON.stringify(format === 2 ? positionalMessage(w) : w);
}

export const MQTT_URL = process.env.DATALAB_MQTT_URL ?? "mqtt://127.0.0.1:1883";
export const NATS_URL = process.env.DATALAB_NATS_URL ?? "nats://127.0.0.1:4222";
export const PG_URL = process.env.DATALAB_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Set (FerretDB in CI, a real MongoDB elsewhere) to run the MongoDB tests. */
export const MONGO_URL = process.env.DATALAB_MONGO_URL;

/** A short name unique to this run: for NATS prefixes, databases, topics, gateway ids. */
export function uniqueId(prefix = "t"): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
}

export function tempDir(prefix = "datalab-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** What a server says when a port freePort() chose was bound by someone else before it. */
const PORT_TAKEN = /address already in use/i;

/**
 * Start a server on ports freePort() chooses inside `start`, and again on fresh ones if one
 * was taken meanwhile: a port is free only until bound, and on a busy machine any outgoing
 * connection may get it as its local port first (CI has seen a nats-server refuse so).
 */
export async function onFreshPorts<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= attempts || !PORT_TAKEN.test(String((err as Error | undefined)?.message ?? err))) throw err;
    }
  }
}

/**
 * `launch` on `port` when the caller gives one (then the caller's to retry), else on a free
 * port, chosen again if another process took it first (`onFreshPorts`).
 */
export function onFreePort<T>(launch: (port: number) => Promise<T>, port?: number): Promise<T> {
  return port !== undefined ? launch(port) : onFreshPorts(async () => launch(await freePort()));
}

/**
 * Every deadline in the tests is multiplied by this (DATALAB_TEST_TIME_SCALE, default 3): a
 * deadline is sized for this machine, and CI may run on one three times slower or busy. A
 * wait on a condition ends when the condition holds, so a long deadline costs nothing.
 */
export const TIME_SCALE = Math.max(1, Number(process.env.DATALAB_TEST_TIME_SCALE) || 3);

/** Poll `cond` until it returns a truthy value; fail with `what` after `timeoutMs` × TIME_SCALE. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  timeoutMs *= TIME_SCALE;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A fresh database on the shared Postgres, dropped by `drop()`. */
export async function createTestDatabase(baseUrl = PG_URL): Promise<TestDatabase> {
  const name = uniqueId("dl_");
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // drop() ends sessions with DROP DATABASE ... WITH (FORCE); an idle client of this pool
  // (or of the code under test) then sees 57P01, which must not crash the test process.
  pool.on("error", () => undefined);
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

function requireBinary(bin: string, hint: string): string {
  const r = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
  const path = r.stdout.trim();
  if (!path) throw new Error(`${bin} is not installed: ${hint}`);
  return path;
}

async function waitForPort(port: number, proc: ChildProcess, what: string, timeoutMs = 15_000): Promise<void> {
  const { connect } = await import("node:net");
  // Fail at once if the process exits instead of listening.
  const exited = new Promise<never>((_, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`${what} exited (code ${code}, signal ${signal}) before listening on ${port}`));
    if (proc.exitCode !== null) onExit(proc.exitCode, null);
    else proc.once("exit", onExit);
  });
  exited.catch(() => undefined);
  const listening = waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = connect(port, "127.0.0.1");
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
      }),
    `${what} to listen on ${port}`,
    timeoutMs,
  );
  await Promise.race([listening, exited]);
}

export interface NatsServer {
  port: number;
  url: string;
  storeDir: string;
  /** The running server's process id (for its CPU time in /proc). */
  readonly pid: number;
  /** Stop gracefully (SIGTERM) and wait for the process to end. */
  stop(): Promise<void>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** Start again on the same port with the same store. */
  start(): Promise<void>;
  /**
   * The last 4,000 characters of its log since it last started (retries of a route to a node
   * that is down only counted): for a failing test's message.
   */
  logTail(): string;
}

export interface NatsServerOptions {
  port?: number;
  /** Extra command-line arguments. */
  args?: string[];
  /** A config file's text (for accounts, permissions, clusters). */
  config?: string;
  storeDir?: string;
}

/** nats-server's line for each retry of a route to a node that does not answer. */
const ROUTE_RETRY = /Error trying to connect to route/;

/**
 * A nats-server of the test's own, with JetStream, on a free port (a fresh one should another
 * process take it first). A port of the caller's, or in the config, is the caller's to retry.
 */
export async function startNatsServer(o: NatsServerOptions = {}): Promise<NatsServer> {
  return onFreePort((port) => launchNatsServer(port, o), o.port);
}

async function launchNatsServer(port: number, o: NatsServerOptions): Promise<NatsServer> {
  const bin = requireBinary("nats-server", "apt-get install nats-server");
  const storeDir = o.storeDir ?? tempDir("datalab-nats-");
  const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir, ...(o.args ?? [])];
  if (o.config) {
    const file = join(storeDir, "server.conf");
    writeFileSync(file, o.config);
    args.push("-c", file);
  }
  let proc: ChildProcess | undefined;
  let stderr = "";
  let routeRetries = 0;
  const server: NatsServer = {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    get pid() {
      return proc?.pid ?? 0;
    },
    async start() {
      stderr = "";
      routeRetries = 0;
      let partial = "";
      let ready = false;
      const p = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
      proc = p;
      // Keep the end of its log: a server that refuses its config says why there. A route to a
      // node that is down is retried every second; those lines are counted, not kept, or they
      // would push everything else out of the tail.
      p.stderr?.on("data", (d: Buffer) => {
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop()!;
        let kept = stderr;
        for (const line of lines) {
          ready ||= line.includes("Server is ready");
          if (ROUTE_RETRY.test(line)) routeRetries++;
          else kept += `${line}\n`;
        }
        stderr = kept.slice(-4_000);
      });
      try {
        await waitForPort(port, p, "nats-server");
        // An answer on the port could come from another process's server holding it, while this
        // one is about to exit: its own word that it is ready is what counts.
        await waitFor(() => ready || p.exitCode !== null, "nats-server to say it is ready", 15_000);
        if (!ready) throw new Error(`nats-server exited (code ${p.exitCode}) before it was ready`);
      } catch (err) {
        await endProcess(proc, "SIGKILL");
        throw new Error(`${(err as Error).message}\nnats-server said:\n${stderr}`, { cause: err });
      }
    },
    async stop() {
      await endProcess(proc, "SIGTERM");
    },
    async kill() {
      await endProcess(proc, "SIGKILL");
    },
    logTail: () => (routeRetries > 0 ? `${stderr}(and ${routeRetries} retries of a route, left out)\n` : stderr),
  };
  await server.start();
  return server;
}

export interface NatsCluster {
  /** The nodes by server name. */
  nodes: Map<string, NatsServer>;
  /** The client URLs of the nodes, in the order of their names. */
  urls: string[];
  /** Each node's monitoring URL (its own view: `streamCopy`), in the order of their names. */
  monitorUrls: string[];
  /** SIGKILL every node and delete its store. */
  kill(): Promise<void>;
}

/**
 * A JetStream cluster of the test's own: one nats-server per name, routed to each other on
 * free ports. A node that fails to start takes the others down with it.
 */
export async function startNatsCluster(names: readonly string[], clusterName: string): Promise<NatsCluster> {
  return onFreshPorts(() => launchNatsCluster(names, clusterName));
}

async function launchNatsCluster(names: readonly string[], clusterName: string): Promise<NatsCluster> {
  const nodes = new Map<string, NatsServer>();
  const kill = async () => {
    await Promise.all([...nodes.values()].map((n) => n.kill()));
    for (const n of nodes.values()) rmSync(n.storeDir, { recursive: true, force: true });
  };
  const clientPorts = await Promise.all(names.map(() => freePort()));
  const routePorts = await Promise.all(names.map(() => freePort()));
  const httpPorts = await Promise.all(names.map(() => freePort()));
  // Every node settled before any is killed: one still starting would be left running.
  const started = await Promise.allSettled(
    names.map((name, i) => {
      const storeDir = tempDir(`datalab-nats-${name}-`);
      const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
      // startNatsServer passes `-sd <storeDir>`; a store_dir in the file as well is refused as a duplicate.
      const config = [
        `server_name: ${name}`,
        "jetstream: enabled",
        `http: 127.0.0.1:${httpPorts[i]}`,
        `cluster { name: ${clusterName}, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes.join(", ")}] }`,
      ].join("\n");
      return startNatsServer({ port: clientPorts[i], storeDir, config }).then((s) => nodes.set(name, s));
    }),
  );
  const failures = started.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
  if (failures.length > 0) {
    await kill();
    throw failures.find((e) => PORT_TAKEN.test(e.message)) ?? failures[0];
  }
  return {
    nodes,
    urls: names.map((n) => nodes.get(n)!.url),
    monitorUrls: httpPorts.map((p) => `http://127.0.0.1:${p}`),
    kill,
  };
}

/**
 * A stream as one node holds it (its own copy, from its monitoring port's /jsz), whatever the
 * leader says of the replicas; undefined when the node holds none.
 */
export async function streamCopy(
  monitorUrl: string,
  stream: string,
): Promise<{ messages: number; lastSeq: number } | undefined> {
  const r = (await (await fetch(`${monitorUrl}/jsz?accounts=true&streams=true`)).json()) as {
    account_details?: { stream_detail?: { name: string; state: { messages: number; last_seq: number } }[] }[];
  };
  for (const a of r.account_details ?? [])
    for (const d of a.stream_detail ?? [])
      if (d.name === stream) return { messages: d.state.messages, lastSeq: d.state.last_seq };
  return undefined;
}

/** Delete the readings and dead-letter streams of a NATS prefix; missing ones are fine. */
export async function deleteStreams(prefix: string, natsUrl = NATS_URL): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(subjects(prefix).stream).catch(() => undefined);
    await jsm.streams.delete(subjects(prefix).deadLetterStream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

async function endProcess(proc: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill(signal);
  await done;
}

export interface PostgresServer {
  port: number;
  url: string;
  dataDir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stop and delete its data. */
  destroy(): Promise<void>;
}

/**
 * A PostgreSQL instance of the test's own (for tests that stop the database). Postgres
 * refuses to run as root, so as root it runs as the `postgres` user.
 */
export async function startPostgres(o: { port?: number } = {}): Promise<PostgresServer> {
  const binDir = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"].find((d) =>
    existsSync(`${d}/initdb`),
  );
  if (!binDir) throw new Error("PostgreSQL server binaries not found (apt-get install postgresql)");
  const dataDir = tempDir("datalab-pg-");
  const asRoot = process.getuid?.() === 0;
  chmodSync(dataDir, 0o777);
  // initdb and pg_ctl take seconds, more on a busy machine: run asynchronously, so the
  // Vitest worker keeps answering meanwhile.
  const run = async (cmd: string, args: string[]) => {
    const full = asRoot ? (["runuser", ["-u", "postgres", "--", cmd, ...args]] as const) : ([cmd, args] as const);
    const r = await runCommand(full[0], [...full[1]], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
  };
  const pgdata = join(dataDir, "data");
  if (asRoot) spawnSync("chown", ["postgres", dataDir]);
  await run(`${binDir}/initdb`, ["-D", pgdata, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const launch = (port: number): PostgresServer => {
    const server: PostgresServer = {
      port,
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      dataDir,
      async start() {
        const log = join(dataDir, "log");
        const options = `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off`;
        try {
          await run(`${binDir}/pg_ctl`, ["-D", pgdata, "-l", log, "-w", "-o", options, "start"]);
        } catch (err) {
          // pg_ctl only says to read the log; why (a port taken) is in the log.
          const said = existsSync(log) ? readFileSync(log, "utf8").slice(-2_000) : "";
          throw new Error(`${(err as Error).message}\npostgres said:\n${said}`, { cause: err });
        }
      },
      async stop() {
        await run(`${binDir}/pg_ctl`, ["-D", pgdata, "-m", "fast", "-w", "stop"]);
      },
      async destroy() {
        try {
          await server.stop();
        } catch {
          // already stopped
        }
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
    return server;
  };
  return onFreePort(async (port) => {
    const server = launch(port);
    await server.start();
    return server;
  }, o.port);
}

/** Run a command to completion; resolves with its exit code and output. */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill("SIGKILL"), (opts.timeoutMs ?? 30_000) * TIME_SCALE);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface MosquittoBroker {
  url: string;
  port: number;
  /** The broker's process id (for its CPU time in /proc). */
  pid: number;
  stop(): Promise<void>;
}

/**
 * A Mosquitto of the caller's own on a free loopback port, without persistence. Its queues
 * are unbounded by default: Mosquitto's own default (`max_queued_messages 1000`) drops QoS 1
 * messages for a subscriber that lags a burst by more than that, which a flood or a replay
 * at full speed would otherwise measure instead of the code under test.
 */
export async function startMosquitto(
  o: { maxQueuedMessages?: number; extraConfig?: string[]; port?: number } = {},
): Promise<MosquittoBroker> {
  const bin = requireBinary("mosquitto", "apt-get install mosquitto");
  const launch = async (port: number): Promise<MosquittoBroker> => {
    const conf = join(tempDir("datalab-mosquitto-"), "mosquitto.conf");
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        "allow_anonymous true",
        "persistence false",
        `max_queued_messages ${o.maxQueuedMessages ?? 0}`,
        "max_inflight_messages 100",
        // Errors only (a port taken, a bad option), for the message of a broker that will not start.
        "log_dest stderr",
        "log_type error",
        ...(o.extraConfig ?? []),
        "",
      ].join("\n"),
    );
    const proc = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4_000);
    });
    try {
      await waitForPort(port, proc, "mosquitto");
    } catch (err) {
      await endProcess(proc, "SIGKILL");
      throw new Error(`${(err as Error).message}\nmosquitto said:\n${stderr}`, { cause: err });
    }
    return {
      url: `mqtt://127.0.0.1:${port}`,
      port,
      pid: proc.pid!,
      stop: () => endProcess(proc, "SIGTERM"),
    };
  };
  return onFreePort(launch, o.port);
}
