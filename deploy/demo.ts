/**
 * `pnpm demo` / `npm run demo`: simulated sensors → MQTT → gateway → uplink → hub → PostgreSQL,
 * all in one process. Each server is used when it answers at its configured address
 * (DATALAB_MQTT_URL, DATALAB_NATS_URL, DATALAB_PG_URL, DATALAB_MONGO_URL); where one does not,
 * an embedded stand-in takes its place: an in-process MQTT broker (aedes), an in-process
 * uplink instead of NATS JetStream, an embedded PostgreSQL (PGlite) with its data kept in
 * DATALAB_DEMO_DIR. MongoDB is used only when configured. See docs/deploy.md.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";
import { ConfigError, createLogger, errorMessage, type Logger } from "@datalab/shared";
import { Gateway, InProcessUplink, loadGatewayConfig, type GatewayConfig } from "@datalab/gateway";
import { Hub, loadHubConfig, type HubConfig } from "@datalab/hub";
import { publishSimulation } from "@datalab/sensors";
import { startEmbeddedBroker, type EmbeddedBroker } from "./demo/broker";
import { choose, portOf, redact, type Choice } from "./demo/choose";
import { loadDemoConfig, type DemoConfig } from "./demo/config";
import { fileDeadLetters } from "./demo/dead-letters";
import { lockDataDir } from "./demo/lock";
import { PglitePool } from "./demo/pglite-pool";

/** Where to find everything, also written to <demo dir>/demo.json for scripts and tests. */
interface DemoInfo {
  pid: number;
  mqttUrl: string;
  hubUrl: string;
  gatewayUrl: string;
  choices: Record<"mqtt" | "nats" | "postgres" | "mongo", Choice & { what: string }>;
}

/** What has been started so far, stopped in reverse order. */
interface Running {
  broker?: EmbeddedBroker;
  pool?: PglitePool;
  hub?: Hub;
  gateway?: Gateway;
  sim?: { abort: AbortController; done: Promise<unknown> };
  unlock?: () => void;
}

async function main(): Promise<number> {
  const demo = loadDemoConfig();
  // A desktop demo has no authentication: keep its HTTP servers on loopback unless asked.
  const env: NodeJS.ProcessEnv = { ...process.env, DATALAB_HTTP_HOST: process.env.DATALAB_HTTP_HOST || "127.0.0.1" };
  const hubBase = loadHubConfig({ env });
  const gwBase = loadGatewayConfig({
    env,
    overrides: {
      httpPort: demo.gatewayHttpPort,
      dataDir: process.env.DATALAB_DATA_DIR || join(demo.demoDir, "gateway"),
    },
  });
  const log = createLogger("demo", hubBase.logLevel);

  mkdirSync(demo.demoDir, { recursive: true });
  const run: Running = { unlock: lockDataDir(demo.demoDir) };
  const infoFile = join(demo.demoDir, "demo.json");
  rmSync(infoFile, { force: true });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= shutdown(run, log, infoFile));
  try {
    const info = await start(demo, hubBase, gwBase, run, log);
    writeFileSync(infoFile, `${JSON.stringify(info, null, 2)}\n`);
    process.stdout.write(banner(info, demo));
    const progress = process.stdout.isTTY ? setInterval(() => void printProgress(run), 10_000) : undefined;
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    clearInterval(progress);
  } catch (err) {
    await stop();
    throw err;
  }
  // Ctrl-C in a terminal reaches both `npm run` and us, and npm passes it on again: later
  // signals are ignored, and a deadline ends a shutdown that hangs.
  const ignore = () => undefined;
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  const deadline = setTimeout(() => {
    process.stderr.write("demo: shutdown took too long; exiting\n");
    process.exit(1);
  }, gwBase.shutdownDrainMs + 20_000);
  deadline.unref();
  process.stdout.write("\nStopping: the gateway sends what is left in its outbox, then everything closes.\n");
  await stop();
  process.stdout.write("Stopped.\n");
  return 0;
}

async function start(
  demo: DemoConfig,
  hubBase: HubConfig,
  gwBase: GatewayConfig,
  run: Running,
  log: Logger,
): Promise<DemoInfo> {
  const t = demo.probeTimeoutMs;
  process.stdout.write(
    "Wireless Sensor DataLab demo: looking for MQTT, NATS and PostgreSQL at their configured addresses...\n",
  );
  const [mqtt, nats, postgres] = await Promise.all([
    choose(demo.embedded, [gwBase.mqttUrl], 1883, t, "DATALAB_MQTT_URL"),
    choose(demo.embedded, hubBase.natsUrl, 4222, t, "DATALAB_NATS_URL"),
    hubBase.pgEnabled
      ? choose(demo.embedded, [hubBase.pgUrl], 5432, t, "DATALAB_PG_URL")
      : Promise.resolve({ embedded: false, why: "DATALAB_PG_ENABLED=false" }),
  ]);
  let mongo: Choice = {
    embedded: false,
    why: "not configured (set DATALAB_MONGO_URL to also keep raw messages in MongoDB)",
  };
  let hubEnv: NodeJS.ProcessEnv = { ...process.env, DATALAB_HTTP_HOST: hubBase.httpHost };
  if (hubBase.mongoUrl) {
    const m = await choose(
      "never" === demo.embedded ? "never" : "auto",
      [hubBase.mongoUrl],
      27017,
      t,
      "DATALAB_MONGO_URL",
    ).catch((err: Error) => ({ embedded: true, why: err.message }));
    if (!m.embedded) mongo = { embedded: false, why: m.why };
    else if (nats.embedded) {
      // In-process, a batch is acked only when every sink committed: a MongoDB that is down
      // would hold Postgres back too. Through NATS each sink has its own backlog instead.
      mongo = { embedded: false, why: `off: ${m.why}; there is no embedded MongoDB` };
      const { DATALAB_MONGO_URL: _omit, ...rest } = hubEnv;
      hubEnv = rest;
    } else mongo = { embedded: false, why: `${m.why}; its JetStream consumer waits for it` };
  }

  let mqttUrl = gwBase.mqttUrl;
  if (mqtt.embedded) {
    run.broker = await startEmbeddedBroker(portOf(gwBase.mqttUrl, 1883), log.child({ part: "broker" }));
    mqttUrl = run.broker.url;
  }
  if (hubBase.pgEnabled && postgres.embedded) {
    const dir = join(demo.demoDir, "pglite");
    const creating = existsSync(dir) ? "" : " (creating it: the first run takes 5-20 s)";
    process.stdout.write(`Opening the embedded PostgreSQL in ${dir}${creating}...\n`);
    run.pool = await PglitePool.open(dir);
  }

  const hubConfig = loadHubConfig({ env: hubEnv });
  run.hub = new Hub(hubConfig, {
    logger: log.child({ part: "hub" }),
    // The adapter implements the part of pg.Pool the hub uses (see demo/pglite-pool.ts).
    ...(run.pool ? { pgPool: run.pool as unknown as pg.Pool } : {}),
    ...(nats.embedded ? { inProcess: { deadLetter: fileDeadLetters(join(demo.demoDir, "dead-letters")) } } : {}),
  });
  await run.hub.start();

  const hub = run.hub;
  // aedes speaks MQTT 3.1.1 only; the gateway defaults to MQTT 5.
  const gwConfig: GatewayConfig = { ...gwBase, mqttUrl, ...(run.broker ? { mqttProtocol: "3.1.1" as const } : {}) };
  run.gateway = new Gateway(gwConfig, {
    logger: log.child({ part: "gateway" }),
    ...(nats.embedded
      ? {
          uplink: new InProcessUplink(
            (subject, data, msgId) => hub.direct!.deliver(subject, data, msgId),
            (subject, data) => hub.acceptReport(subject, data),
          ),
        }
      : {}),
  });
  await run.gateway.start();

  if (demo.sensors > 0) {
    const abort = new AbortController();
    const done = publishSimulation({
      mqttUrl,
      sensors: demo.sensors,
      rate: demo.rate,
      seed: "demo",
      format: "multi",
      topicRoot: "sensors",
      signal: abort.signal,
    }).catch((err: unknown) => log.error({ err: errorMessage(err) }, "simulator stopped"));
    run.sim = { abort, done };
  }

  const host = hubConfig.httpHost === "0.0.0.0" ? "127.0.0.1" : hubConfig.httpHost;
  return {
    pid: process.pid,
    mqttUrl,
    hubUrl: `http://${host}:${run.hub.httpPort}`,
    gatewayUrl: `http://${host}:${run.gateway.httpPort}`,
    choices: {
      mqtt: {
        ...mqtt,
        what: mqtt.embedded ? `embedded broker (aedes) at ${mqttUrl}` : `Mosquitto/MQTT broker at ${redact(mqttUrl)}`,
      },
      nats: {
        ...nats,
        what: nats.embedded
          ? "in-process uplink (no NATS; acked after the hub's sinks commit)"
          : `NATS JetStream at ${hubConfig.natsUrl.map(redact).join(", ")}`,
      },
      postgres: {
        ...postgres,
        what: !hubConfig.pgEnabled
          ? "off"
          : postgres.embedded
            ? `embedded PostgreSQL (PGlite), data in ${join(demo.demoDir, "pglite")}`
            : `PostgreSQL at ${redact(hubConfig.pgUrl)}`,
      },
      mongo: { ...mongo, what: hubConfig.mongoUrl ? `MongoDB at ${redact(hubConfig.mongoUrl)}` : "off" },
    },
  };
}

function banner(i: DemoInfo, demo: DemoConfig): string {
  const line = (name: string, c: DemoInfo["choices"]["mqtt"]) =>
    `  ${name.padEnd(12)}${c.what}\n  ${"".padEnd(12)}(${c.why})\n`;
  return (
    `\nWireless Sensor DataLab demo is running.\n\n` +
    line("MQTT", i.choices.mqtt) +
    line("uplink", i.choices.nats) +
    line("PostgreSQL", i.choices.postgres) +
    line("MongoDB", i.choices.mongo) +
    `\n  dashboard   ${i.hubUrl}/\n` +
    `  query API   ${i.hubUrl}/api\n` +
    `  hub         ${i.hubUrl}/healthz   ${i.hubUrl}/metrics\n` +
    `  gateway     ${i.gatewayUrl}/status   ${i.gatewayUrl}/metrics\n` +
    (demo.sensors > 0
      ? `  sensors     ${demo.sensors} simulated, ${demo.rate}/s, publishing to ${i.mqttUrl} topic sensors/<id>\n`
      : `  sensors     none simulated (DATALAB_DEMO_SENSORS=0)\n`) +
    `  your own    mosquitto_pub -h ${new URL(i.mqttUrl).hostname} -p ${new URL(i.mqttUrl).port || 1883} ` +
    `-t sensors/mine -m '{"sensor":"mine","temperature":21.5}'\n` +
    `  data kept   ${demo.demoDir}\n\n` +
    `Ctrl-C stops it.\n`
  );
}

async function printProgress(run: Running): Promise<void> {
  if (!run.gateway || !run.hub) return;
  const s = run.gateway.status();
  const written = (await run.hub.metrics.readingsWritten.get()).values.reduce((a, v) => a + v.value, 0);
  process.stdout.write(
    `[demo] outbox ${s.outbox.readings} readings waiting, uplink ${run.gateway.uplink.status().state}; ` +
      `hub wrote ${written} readings\n`,
  );
}

async function shutdown(run: Running, log: Logger, infoFile: string): Promise<void> {
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      log.warn({ err: errorMessage(err) }, `${what} failed while stopping`);
    }
  };
  if (run.sim) {
    run.sim.abort.abort();
    await step("simulator", () => run.sim!.done);
  }
  // Gateway first: it drains its outbox through the uplink while the hub still runs.
  if (run.gateway) await step("gateway", () => run.gateway!.stop());
  if (run.hub) await step("hub", () => run.hub!.stop());
  // The hub's Postgres sink ends the pool; end() again is harmless and covers a failed start.
  if (run.pool) await step("embedded postgres", () => run.pool!.end());
  if (run.broker) await step("embedded broker", () => run.broker!.close());
  rmSync(infoFile, { force: true });
  run.unlock?.();
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `demo failed: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
