/**
 * The spine, end to end, against the real Mosquitto, NATS and PostgreSQL on loopback:
 * sensor → Mosquitto → gateway (SQLite outbox) → NATS JetStream → hub → PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { batchMsgId, encodeBatch, ensureReadingsStream, metricValue, subjects, type Batch } from "@datalab/shared";
import {
  deleteStreams,
  MQTT_URL,
  NATS_URL,
  runCommand,
  uniqueId,
  waitFor,
  type TestDatabase,
} from "@datalab/shared/testing";
import type { Gateway } from "@datalab/gateway";
import { publishSimulation, Simulator } from "@datalab/sensors";
import { startHub, startPipeline, type Pipeline } from "./support/pipeline";
import { READING_KEY } from "./support/recorded";

const id = uniqueId("spine");
let pipeline: Pipeline;
let db: TestDatabase;
let gateway: Gateway;
let nc: NatsConnection;

const mqtt = new URL(MQTT_URL);

/** The real mosquitto_pub, QoS 1, on the original DataLab's topic `sensors`. */
function publishToSensors(message: string) {
  return runCommand("mosquitto_pub", [
    "-h",
    mqtt.hostname,
    "-p",
    mqtt.port || "1883",
    "-q",
    "1",
    "-t",
    "sensors",
    "-m",
    message,
  ]);
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await db.pool.query<{ n: string }>(sql, params);
  return Number(r.rows[0]!.n);
}

beforeAll(async () => {
  // The original DataLab's topic, plus this test's own tree for the simulator.
  pipeline = await startPipeline({ id, topics: `sensors,${id}/sensors/#` });
  ({ db, gateway } = pipeline);
  nc = await connect({ servers: NATS_URL });
});

afterAll(async () => {
  await pipeline?.stop();
  if (nc) {
    await deleteStreams(`${id}r`);
    await nc.close();
  }
});

describe("spine: Mosquitto → gateway → NATS → hub → Postgres", () => {
  it("lands every simulated reading exactly once, with the values the simulator made", async () => {
    // Paced, as sensors are: a flood far beyond what a broker queues for one client is the
    // business of the gateway's own durability tests, not of this one.
    const opts = { sensors: 7, rate: 1500, seed: `seed-${id}`, startTs: Date.UTC(2026, 0, 1), idPrefix: `sim-${id}` };
    const messages = 1000;
    const sent = await publishSimulation({
      ...opts,
      mqttUrl: MQTT_URL,
      format: "multi",
      topicRoot: `${id}/sensors`,
      count: messages,
      qos: 1,
    });
    expect(sent).toBe(messages);
    const expectedReadings = messages * 3;
    let seen = 0;
    await waitFor(
      async () =>
        (seen = await count("SELECT count(*) AS n FROM readings WHERE sensor_id LIKE $1", [`sim-${id}-%`])) >=
        expectedReadings,
      `${expectedReadings} readings in Postgres (seen so far: ${seen})`,
      45_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; rows: ${seen}, gateway: ${JSON.stringify(gateway.status())}`);
    });
    // Nothing more arrives: wait until the gateway's outbox is empty, then count again.
    await waitFor(() => gateway.status().outbox.readings === 0, "an empty outbox");
    expect(await count("SELECT count(*) AS n FROM readings WHERE sensor_id LIKE $1", [`sim-${id}-%`])).toBe(
      expectedReadings,
    );
    expect(
      await count("SELECT count(DISTINCT (instance, seq)) AS n FROM readings WHERE sensor_id LIKE $1", [`sim-${id}-%`]),
    ).toBe(expectedReadings);

    // The same seed regenerates the same stream: every row must be one the simulator made.
    const sim = new Simulator(opts);
    const expected = new Set<string>();
    for (let i = 0; i < messages; i++) {
      const s = sim.next();
      expected.add(`${s.sensorId}|temperature|${s.ts}|${s.temperature}`);
      expected.add(`${s.sensorId}|humidity|${s.ts}|${s.humidity}`);
      expected.add(`${s.sensorId}|battery|${s.ts}|${s.battery}`);
    }
    const rows = await db.pool.query<{ k: string }>(
      `SELECT ${READING_KEY} AS k FROM readings WHERE sensor_id LIKE $1`,
      [`sim-${id}-%`],
    );
    const got = new Set(rows.rows.map((r) => r.k));
    expect(got.size).toBe(expected.size);
    for (const k of expected) expect(got.has(k), k).toBe(true);
    const units = await db.pool.query<{ metric: string; unit: string }>(
      "SELECT DISTINCT metric, unit FROM readings WHERE sensor_id LIKE $1 ORDER BY metric",
      [`sim-${id}-%`],
    );
    expect(units.rows).toEqual([
      { metric: "battery", unit: "V" },
      { metric: "humidity", unit: "%RH" },
      { metric: "temperature", unit: "Cel" },
    ]);
  });

  it("lands the original DataLab publish, made by the real mosquitto_pub, as one row", async () => {
    const r = await publishToSensors('{"name": "sensor1", "value": 5.1}');
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      async () =>
        (await count("SELECT count(*) AS n FROM readings WHERE sensor_id = 'sensor1' AND source = 'mqtt:sensors'")) >=
        1,
      "sensor1 in Postgres",
    );
    await waitFor(() => gateway.status().outbox.readings === 0, "an empty outbox");
    const rows = await db.pool.query(
      "SELECT sensor_id, metric, value, unit FROM readings WHERE sensor_id = 'sensor1' AND source = 'mqtt:sensors'",
    );
    expect(rows.rows).toEqual([{ sensor_id: "sensor1", metric: "value", value: 5.1, unit: null }]);
  });

  it("quarantines the single-quoted variant with a reason a person understands, counts it, keeps running", async () => {
    const before = await metricValue(gateway.metrics.registry, "datalab_gateway_quarantined_total", {
      reason: "not_json",
    });
    const r = await publishToSensors("{'name': 'sensor1'}");
    expect(r.code, r.stderr).toBe(0);
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
      const m = /datalab_gateway_quarantined_total\{reason="not_json",source="mqtt"[^}]*\} (\d+)/.exec(text);
      return m && Number(m[1]) > before ? text : undefined;
    }, "the quarantine counter in /metrics");
    expect(metrics).toMatch(/datalab_gateway_quarantined_total/);
    const q = await waitFor(
      () => gateway.outbox.quarantined(50).find((x) => x.payload.toString() === "{'name': 'sensor1'}"),
      "the quarantine row",
    );
    expect(q.reason).toBe("not_json");
    expect(q.detail).toMatch(/double quotes/);
    expect(q.source).toBe("mqtt:sensors");
    // Still running: a good message after the bad one lands.
    const sensor = `after-${id}`;
    await publishToSensors(JSON.stringify({ name: sensor, value: 1 }));
    await waitFor(
      async () => (await count("SELECT count(*) AS n FROM readings WHERE sensor_id = $1", [sensor])) === 1,
      "the next good reading",
    );
  });

  it("quarantines every kind of bad input and none of it reaches the hub", async () => {
    const topic = `${id}/sensors/bad`;
    const bad: [string, Buffer][] = [
      ["not_json", Buffer.from("hello")],
      ["wrong_shape", Buffer.from('"just a string"')],
      ["bad_value", Buffer.from(`{"sensor":"bad-${id}","t":"21.5"}`)],
      ["not_json", Buffer.from(`{"sensor":"bad-${id}","t":NaN}`)],
      ["empty", Buffer.alloc(0)],
      ["too_large", Buffer.from(`{"sensor":"bad-${id}","t":1,"pad":"${"x".repeat(70_000)}"}`)],
      ["bad_sensor_id", Buffer.from(JSON.stringify({ sensor: `bad\u0007${id}`, t: 1 }))],
    ];
    const { default: mqttjs } = await import("mqtt");
    const client = await mqttjs.connectAsync(MQTT_URL);
    const before = gateway.outbox.quarantineCounts();
    for (const [, payload] of bad) await client.publishAsync(topic, payload, { qos: 1 });
    await client.endAsync();
    const want: Record<string, number> = {};
    for (const [reason] of bad) want[reason] = (want[reason] ?? 0) + 1;
    await waitFor(() => {
      const now = gateway.outbox.quarantineCounts();
      return Object.entries(want).every(([reason, n]) => (now[reason] ?? 0) - (before[reason] ?? 0) >= n);
    }, "all bad messages in the quarantine");
    expect(await count("SELECT count(*) AS n FROM readings WHERE sensor_id LIKE $1", [`bad%${id}`])).toBe(0);
    expect(gateway.status().sources[0]?.state).toBe("connected");
  });

  it("writes a batch delivered twice (same Nats-Msg-Id, past the duplicate window) once", async () => {
    // A stream of this test's own with a short duplicate window, and a hub consuming it.
    const prefix = `${id}r`;
    const subj = subjects(prefix);
    const jsm = await jetstreamManager(nc);
    await ensureReadingsStream(jsm, subj, { duplicateWindowMs: 300 });
    const hub2 = await startHub({ prefix, pgUrl: db.url });
    try {
      const gw = `redeliver-${id}`;
      const batch: Batch = {
        v: 1,
        gatewayId: gw,
        instance: "abc123",
        firstSeq: 1,
        lastSeq: 3,
        sentAt: Date.now(),
        messages: [
          {
            source: "mqtt:test",
            receivedAt: Date.now(),
            payload: "{}",
            encoding: "utf8",
            // Three measurements: one sensor and metric, three times (the same time would make them one).
            readings: [1, 2, 3].map((seq) => ({
              seq,
              sensorId: `r-${id}`,
              metric: "temperature",
              value: 20 + seq,
              unit: "Cel",
              ts: Date.now() - 1_000 * seq,
            })),
          },
        ],
      };
      const js = jetstream(nc);
      const msgID = batchMsgId(batch);
      const first = await js.publish(subj.readings(gw), encodeBatch(batch), { msgID });
      expect(first.duplicate).toBe(false);
      await waitFor(
        async () => (await count("SELECT count(*) AS n FROM readings WHERE sensor_id = $1", [`r-${id}`])) === 3,
        "the first delivery",
      );
      // Publish again until the server no longer recognises the id: the window has passed.
      await waitFor(
        async () => !(await js.publish(subj.readings(gw), encodeBatch(batch), { msgID })).duplicate,
        "a publish past the duplicate window",
      );
      const info = await jsm.streams.info(subj.stream);
      expect(info.state.messages).toBe(2);
      await waitFor(
        async () =>
          (await metricValue(hub2.metrics.registry, "datalab_hub_batches_written_total", { sink: "postgres" })) === 2,
        "both deliveries written",
      );
      expect(await count("SELECT count(*) AS n FROM readings WHERE sensor_id = $1", [`r-${id}`])).toBe(3);
    } finally {
      await hub2.stop();
    }
  });
});
