/**
 * Replay of real recorded data, end to end, against the real Mosquitto, NATS and PostgreSQL:
 * `pnpm sensors replay` → Mosquitto (or a socat pty pair as the radio's serial line) → gateway
 * (SQLite outbox) → NATS JetStream → hub → Postgres.
 * What lands is checked against statistics computed here, straight from the file, with a
 * parser of this test's own (not the replay code's).
 *
 * The test runs its own Mosquitto: the shared one keeps Mosquitto's default
 * max_queued_messages of 1000 per client, beyond which it drops QoS 1 messages for a
 * subscriber that lags (its log says "Outgoing messages are being dropped"). A replay at full
 * speed on a loaded two-core machine outruns the gateway's subscription by more than that, so
 * "exactly the data set" needs a broker configured not to drop, as a deployment that replays
 * data sets should be too.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  runCommand,
  startMosquitto,
  uniqueId,
  waitFor,
  type MosquittoBroker,
  type TestDatabase,
} from "@datalab/shared/testing";
import type { Gateway } from "@datalab/gateway";
import { MqttEncoder, MqttOutput, replayFile } from "@datalab/sensors";
import { startPtyPair, type PtyPair } from "../sensors/test/simulate/processes";
import { startPipeline, type Pipeline } from "./support/pipeline";
import { intelLabReadings, READING_KEY, replaySuthaharan, SENSOR_SPAN } from "./support/recorded";

const id = uniqueId("replay");
const fixtures = new URL("../../shared/fixtures/", import.meta.url);
const cli = new URL("../sensors/src/cli.ts", import.meta.url).pathname;
let pipeline: Pipeline;
let db: TestDatabase;
let gateway: Gateway;
let broker: MosquittoBroker;
/** A radio's serial line: the replay writes to `a`, the gateway reads `b`. */
let radio: PtyPair;

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await db.pool.query<{ n: string }>(sql, params);
  return Number(r.rows[0]!.n);
}

interface Stat {
  count: number;
  min: number;
  max: number;
  sum: number;
}

function add(stats: Map<string, Stat>, key: string, v: number): void {
  const s = stats.get(key) ?? { count: 0, min: Infinity, max: -Infinity, sum: 0 };
  s.count += 1;
  s.min = Math.min(s.min, v);
  s.max = Math.max(s.max, v);
  s.sum += v;
  stats.set(key, s);
}

async function statsInPostgres(sensorLike: string): Promise<Map<string, Stat>> {
  const r = await db.pool.query<{ k: string; n: string; min: number; max: number; sum: number }>(
    "SELECT sensor_id || '/' || metric AS k, count(*) AS n, min(value) AS min, max(value) AS max, sum(value) AS sum " +
      "FROM readings WHERE sensor_id LIKE $1 GROUP BY 1",
    [sensorLike],
  );
  return new Map(r.rows.map((x) => [x.k, { count: Number(x.n), min: x.min, max: x.max, sum: x.sum }]));
}

/** A Mosquitto of this test's own, on a free loopback port, that queues rather than drops. */
beforeAll(async () => {
  broker = await startMosquitto();
  radio = await startPtyPair();
  pipeline = await startPipeline({
    id,
    mqttUrl: broker.url,
    topics: `${id}/csv/#,${id}/intel/#`,
    gatewayEnv: { DATALAB_MQTT_RTL433_TOPICS: "", DATALAB_SERIAL_PORTS: `${radio.b}:xbee2` },
  });
  ({ db, gateway } = pipeline);
});

afterAll(async () => {
  await pipeline?.stop();
  await broker?.stop();
  await radio?.stop();
});

describe("replay: recorded data → Mosquitto or a serial line → gateway → NATS → hub → Postgres", () => {
  it("lands exactly the valid readings of suthaharan single-hop.csv (18,914 rows), by the real CLI", async () => {
    const file = new URL("suthaharan/single-hop.csv", fixtures).pathname;
    // The expectation, from the file: header `reading,mote_id,indoor,humidity,temperature,label`.
    const expected = new Map<string, Stat>();
    const [header, ...rows] = readFileSync(file, "utf8").trim().split(/\r?\n/);
    expect(header).toBe("reading,mote_id,indoor,humidity,temperature,label");
    let valid = 0;
    for (const row of rows) {
      const [, mote, , humidity, temperature] = row.split(",");
      for (const [metric, text] of [
        ["humidity", humidity],
        ["temperature", temperature],
      ] as const) {
        if (text === undefined || text.trim() === "" || !Number.isFinite(Number(text))) continue;
        add(expected, `${mote}/${metric}`, Number(text));
        valid += 1;
      }
    }
    expect(rows).toHaveLength(18_914);

    const start = Date.UTC(2010, 5, 1);
    const r = await replaySuthaharan(file, {
      topic: `${id}/csv`,
      start: new Date(start).toISOString(),
      extra: ["--format", "csv"],
      env: { ...process.env, DATALAB_MQTT_URL: broker.url },
      timeoutMs: 40_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/18914 rows read, 18914 published, 0 skipped/);

    await waitFor(
      async () =>
        (await count("SELECT count(*) AS n FROM readings WHERE source LIKE $1", [`mqtt:${id}/csv/%`])) >= valid,
      `${valid} readings in Postgres`,
      45_000,
    );
    await waitFor(() => gateway.status().outbox.readings === 0, "an empty outbox");
    expect(await count("SELECT count(*) AS n FROM readings WHERE source LIKE $1", [`mqtt:${id}/csv/%`])).toBe(valid);

    const got = await statsInPostgres("%");
    const csvGot = new Map([...got].filter(([k]) => !k.startsWith("intel-")));
    expect([...csvGot.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, e] of expected) {
      const g = csvGot.get(k)!;
      expect(g.count, k).toBe(e.count);
      expect(g.min, k).toBe(e.min);
      expect(g.max, k).toBe(e.max);
      expect(g.sum / g.count, k).toBeCloseTo(e.sum / e.count, 9);
    }
    const units = await db.pool.query(
      "SELECT DISTINCT metric, unit FROM readings WHERE source LIKE $1 ORDER BY metric",
      [`mqtt:${id}/csv/%`],
    );
    expect(units.rows).toEqual([
      { metric: "humidity", unit: "%RH" },
      { metric: "temperature", unit: "Cel" },
    ]);
    // Each mote's rows are spaced --interval apart from --start: its k-th row at start + k s.
    const rowsPerMote = new Map<string, number>();
    for (const row of rows) rowsPerMote.set(row.split(",")[1]!, (rowsPerMote.get(row.split(",")[1]!) ?? 0) + 1);
    const span = await db.pool.query<{ sensor_id: string; first: string; last: string }>(
      `SELECT ${SENSOR_SPAN} FROM readings WHERE source LIKE $1 GROUP BY 1`,
      [`mqtt:${id}/csv/%`],
    );
    expect(span.rows).toHaveLength(rowsPerMote.size);
    for (const r of span.rows) {
      expect(Number(r.first), r.sensor_id).toBe(start);
      expect(Number(r.last), r.sensor_id).toBe(start + (rowsPerMote.get(r.sensor_id)! - 1) * 1000);
    }
  });

  it("keeps the Intel Lab rows' original timestamps and values, the dying mote's 122.153 °C included", async () => {
    const file = new URL("intel-lab/lines.txt", fixtures).pathname;
    const expected = intelLabReadings(file, (mote) => `intel-${mote}`);
    const out = await MqttOutput.connect({ url: broker.url, qos: 1 });
    const summary = await replayFile(
      { file, format: "intel-lab", mapping: { sensorPrefix: "intel-" }, speed: "max" },
      new MqttEncoder("multi", `${id}/intel`),
      out,
    );
    await out.close();
    expect(summary.published).toBe(9);
    await waitFor(
      async () => (await count("SELECT count(*) AS n FROM readings WHERE sensor_id LIKE 'intel-%'")) >= expected.size,
      `${expected.size} Intel Lab readings`,
    );
    await waitFor(() => gateway.status().outbox.readings === 0, "an empty outbox");
    const rows = await db.pool.query<{ k: string }>(
      `SELECT ${READING_KEY} AS k FROM readings WHERE sensor_id LIKE 'intel-%'`,
    );
    expect(new Set(rows.rows.map((x) => x.k))).toEqual(expected);
    expect(rows.rows).toHaveLength(36);
    expect(expected.has(`intel-1|temperature|${Date.UTC(2004, 2, 31, 3, 38, 15, 757)}|122.153`)).toBe(true);
  });

  it(
    "replays through a serial port in XBee API mode 2, which the gateway reads: " +
      "the rows reach Postgres with their recorded times",
    async () => {
      const file = new URL("intel-lab/lines.txt", fixtures).pathname;
      // Mote 1 is XBee node 1: the coordinator names it by its 64-bit address.
      const expected = intelLabReadings(file, () => "xbee-0013a20000000001");
      await waitFor(
        () => gateway.status().sources.find((x) => x.name.startsWith("serial:"))?.state === "connected",
        "the gateway's serial port open",
      );
      const r = await runCommand(
        "node",
        ["--import", "tsx", cli, "replay", file, "--speed", "max", "--out", `serial:${radio.a}@9600:xbee2`, "--quiet"],
        { timeoutMs: 30_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/9 rows read, 9 published, 0 skipped/);
      await waitFor(
        async () => (await count("SELECT count(*) AS n FROM readings WHERE sensor_id LIKE 'xbee-%'")) >= expected.size,
        `${expected.size} readings from the serial line`,
      );
      await waitFor(() => gateway.status().outbox.readings === 0, "an empty outbox");
      const rows = await db.pool.query<{ k: string; source: string }>(
        `SELECT ${READING_KEY} AS k, source FROM readings WHERE sensor_id LIKE 'xbee-%'`,
      );
      expect(new Set(rows.rows.map((x) => x.k))).toEqual(expected);
      expect(rows.rows).toHaveLength(36);
      expect(new Set(rows.rows.map((x) => x.source))).toEqual(new Set([`serial:${radio.b}:xbee2`]));
    },
  );
});
