/**
 * The one-command desktop demo as a user runs it (`node --import tsx deploy/demo.ts`), on a
 * machine where none of its servers answer: MQTT, NATS and PostgreSQL point at closed ports,
 * MongoDB is unset. It must fall back to its embedded stand-ins, carry a reading published to
 * its broker all the way to the hub's API, stop cleanly on SIGINT, and find its data again on
 * the next run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { subjects } from "@datalab/shared";
import {
  createTestDatabase,
  freePort,
  MQTT_URL,
  NATS_URL,
  tempDir,
  uniqueId,
  waitFor,
  type TestDatabase,
  TIME_SCALE,
} from "@datalab/shared/testing";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface DemoInfo {
  pid: number;
  mqttUrl: string;
  hubUrl: string;
  gatewayUrl: string;
  choices: Record<string, { embedded: boolean; why: string; what: string }>;
}

interface Demo {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

let dataDir = tempDir("datalab-demo-");
const dataDirs = [dataDir];
const running: Demo[] = [];

/** A clean environment: no DATALAB_* from the caller (CI sets DATALAB_MONGO_URL), only ours. */
function demoEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DATALAB_")) env[k] = v;
  return {
    ...env,
    DATALAB_DEMO_DIR: dataDir,
    DATALAB_HTTP_PORT: "0",
    DATALAB_GATEWAY_HTTP_PORT: "0",
    DATALAB_LOG_LEVEL: "warn",
    ...extra,
  };
}

function startDemo(env: NodeJS.ProcessEnv): Demo {
  const proc = spawn(process.execPath, ["--import", "tsx", "deploy/demo.ts"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  // Bounded: the tail is what a failure message needs.
  const keep = (chunk: Buffer) => void (out = (out + chunk.toString()).slice(-20_000));
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const demo = { proc, out: () => out, exited };
  running.push(demo);
  return demo;
}

async function readyInfo(demo: Demo): Promise<DemoInfo> {
  const file = join(dataDir, "demo.json");
  await waitFor(
    () => {
      if (demo.proc.exitCode !== null) throw new Error(`demo exited with ${demo.proc.exitCode}:\n${demo.out()}`);
      return existsSync(file);
    },
    "the demo to be ready (demo.json)",
    90_000,
    100,
  );
  return JSON.parse(readFileSync(file, "utf8")) as DemoInfo;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

async function stop(demo: Demo): Promise<number | null> {
  demo.proc.kill("SIGINT");
  return demo.exited;
}

afterAll(async () => {
  for (const d of running) if (d.proc.exitCode === null) d.proc.kill("SIGKILL");
  await Promise.all(running.map((d) => d.exited));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe("desktop demo with no servers reachable", () => {
  const sensor = uniqueId("demo-sensor-");
  let mqttPort: number;
  let env: NodeJS.ProcessEnv;

  it(
    "falls back to its stand-ins, carries a published reading to the API, and exits 0 on SIGINT",
    async () => {
      // Ports that were free a moment ago: nothing answers there.
      const [m, n, p] = [await freePort(), await freePort(), await freePort()];
      mqttPort = m;
      env = demoEnv({
        DATALAB_MQTT_URL: `mqtt://127.0.0.1:${m}`,
        DATALAB_NATS_URL: `nats://127.0.0.1:${n}`,
        DATALAB_PG_URL: `postgres://postgres@127.0.0.1:${p}/datalab`,
        DATALAB_DEMO_SENSORS: "2",
        DATALAB_DEMO_PROBE_MS: "500",
        DATALAB_REPORT_INTERVAL_MS: "500",
      });
      const demo = startDemo(env);
      const info = await readyInfo(demo);
      expect(info.choices.mqtt!.embedded).toBe(true);
      expect(info.choices.nats!.embedded).toBe(true);
      expect(info.choices.postgres!.embedded).toBe(true);
      expect(info.choices.mongo!.what).toBe("off");
      // The embedded broker takes the configured address, so sensors pointed there reach it.
      expect(new URL(info.mqttUrl).port).toBe(String(m));
      expect(demo.out()).toContain(`dashboard   ${info.hubUrl}/`);

      const health = await getJson<{ ok: boolean; nats: string }>(`${info.hubUrl}/healthz`);
      expect(health).toMatchObject({ ok: true, nats: "in-process" });

      const client = await mqtt.connectAsync(info.mqttUrl, { clientId: uniqueId("demo-test-") });
      await client.publishAsync(
        `sensors/${sensor}`,
        JSON.stringify({ sensor, temperature: 21.5, humidity: 40, units: { temperature: "Cel", humidity: "%RH" } }),
        { qos: 1 },
      );
      // The original DataLab's bad example: quarantined by the gateway, never crashing anything.
      await client.publishAsync(`sensors/${sensor}`, "{'name': 'sensor1'}", { qos: 1 });
      await client.endAsync();

      type Sensors = {
        sensors: { sensorId: string; metrics: Record<string, { value: number; unit: string | null }> }[];
      };
      const found = await waitFor(
        async () =>
          (await getJson<Sensors>(`${info.hubUrl}/api/sensors?sensor=${encodeURIComponent(sensor)}`)).sensors[0],
        "the published reading in the hub's API",
        30_000,
        200,
      );
      expect(found.metrics.temperature).toMatchObject({ value: 21.5, unit: "Cel" });
      expect(found.metrics.humidity).toMatchObject({ value: 40, unit: "%RH" });

      const metrics = await (await fetch(`${info.hubUrl}/metrics`)).text();
      const written = Number(
        /datalab_hub_readings_written_total\{sink="postgres"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0,
      );
      expect(written).toBeGreaterThanOrEqual(2);
      // The simulated sensors flow too.
      await waitFor(
        async () => (await getJson<Sensors>(`${info.hubUrl}/api/sensors?prefix=sim-`)).sensors.length > 0,
        "simulated sensors in the API",
        20_000,
        200,
      );
      // The bad message may arrive just after a group was committed: it goes in the next one.
      type Status = { quarantine: Record<string, number> };
      const quarantined = await waitFor(
        async () =>
          Object.values((await getJson<Status>(`${info.gatewayUrl}/status`)).quarantine).reduce((a, b) => a + b, 0),
        "the bad message in the gateway's quarantine",
        10_000,
        100,
      );
      expect(quarantined).toBe(1);
      // The gateway's health report reaches the hub in-process too: the gateway panel is filled.
      type Gateways = {
        gateways: { reportedAt: number | null; health: string | null; quarantine: Record<string, number> | null }[];
      };
      const reported = await waitFor(
        async () =>
          (await getJson<Gateways>(`${info.hubUrl}/api/gateways`)).gateways.find(
            (g) => g.reportedAt !== null && (g.quarantine?.not_json ?? 0) >= 1,
          ),
        "the gateway's health report in the API",
        20_000,
        200,
      );
      expect(reported.health).toBe("ok");

      expect(await stop(demo)).toBe(0);
      expect(demo.out()).toContain("Stopped.");
      expect(existsSync(join(dataDir, "demo.json"))).toBe(false);
      expect(existsSync(join(dataDir, "demo.pid"))).toBe(false);
    },
    120_000 * TIME_SCALE,
  );

  it(
    "finds the previous run's readings in its kept data folder",
    async () => {
      expect(env, "the first test must have run").toBeDefined();
      const demo = startDemo({ ...env, DATALAB_DEMO_SENSORS: "0" });
      const info = await readyInfo(demo);
      expect(new URL(info.mqttUrl).port).toBe(String(mqttPort));
      const r = await getJson<{ sensors: { sensorId: string; metrics: Record<string, { value: number }> }[] }>(
        `${info.hubUrl}/api/sensors?sensor=${encodeURIComponent(sensor)}`,
      );
      expect(r.sensors[0]?.metrics.temperature?.value).toBe(21.5);
      expect(await stop(demo)).toBe(0);
    },
    120_000 * TIME_SCALE,
  );
});

describe("desktop demo with the real servers answering", () => {
  const id = uniqueId("demo");
  let db: TestDatabase;

  afterAll(async () => {
    await db?.drop();
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    for (const stream of [subjects(id).stream, subjects(id).deadLetterStream])
      await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it(
    "uses Mosquitto, NATS JetStream and PostgreSQL at the configured addresses",
    async () => {
      db = await createTestDatabase();
      dataDir = tempDir("datalab-demo-real-");
      dataDirs.push(dataDir);
      const demo = startDemo(
        demoEnv({
          DATALAB_MQTT_URL: MQTT_URL,
          DATALAB_NATS_URL: NATS_URL,
          DATALAB_PG_URL: db.url,
          DATALAB_NATS_PREFIX: id,
          DATALAB_GATEWAY_ID: id,
          // Topics of our own on the shared Mosquitto; no simulator (it publishes to sensors/).
          DATALAB_MQTT_TOPICS: `${id}/sensors/#`,
          DATALAB_DEMO_SENSORS: "0",
        }),
      );
      const info = await readyInfo(demo);
      expect(Object.values(info.choices).map((c) => c.embedded)).toEqual([false, false, false, false]);
      expect(info.mqttUrl).toBe(MQTT_URL);
      expect(existsSync(join(dataDir, "pglite"))).toBe(false);
      const client = await mqtt.connectAsync(MQTT_URL, { clientId: uniqueId("demo-test-") });
      await client.publishAsync(`${id}/sensors/probe`, JSON.stringify({ sensor: `${id}-probe`, temperature: 19.25 }), {
        qos: 1,
      });
      await client.endAsync();
      await waitFor(
        async () =>
          (await db.pool.query<{ value: number }>("SELECT value FROM readings WHERE sensor_id = $1", [`${id}-probe`]))
            .rows[0]?.value === 19.25,
        "the reading in the test database",
        30_000,
        100,
      );
      expect((await getJson<{ nats: string }>(`${info.hubUrl}/healthz`)).nats).toBe("connected");
      expect(await stop(demo)).toBe(0);
    },
    90_000 * TIME_SCALE,
  );
});
