/**
 * The query API against a Postgres filled by the real pipeline: readings published to
 * Mosquitto → in-process gateway → NATS JetStream → in-process hub → PostgreSQL, then read
 * back over HTTP. Bucketed aggregates are checked against SQL written independently here
 * (GROUP BY floor(epoch / bucket)) and against the values as published.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { MQTT_URL, uniqueId, waitFor, type TestDatabase } from "@datalab/shared/testing";
import type { Hub } from "../src/index";
import { startPipeline, type Pipeline } from "../../test/support/pipeline";
import { openSse } from "./api-sse";

const execFileAsync = promisify(execFile);
const id = uniqueId("api");
const A = `api-${id}-a`;
const B = `api-${id}-b`;
const STEP_MS = 37_000;
const N_A = 250;
const N_B = 40;
// Not aligned to any bucket, so bucket edges fall inside the data.
const T0 = Date.now() - N_A * STEP_MS - 123_457;

interface Published {
  sensor: string;
  ts: number;
  temperature: number;
  humidity: number;
}
const round2 = (v: number) => Math.round(v * 100) / 100;
const published: Published[] = [];
for (let i = 0; i < N_A; i++)
  published.push({
    sensor: A,
    ts: T0 + i * STEP_MS,
    temperature: round2(20 + 4 * Math.sin(i / 7) + (i % 5) * 0.1),
    humidity: round2(40 + 10 * Math.cos(i / 11)),
  });
for (let i = 0; i < N_B; i++)
  published.push({ sensor: B, ts: T0 + i * 4 * STEP_MS + 1_000, temperature: round2(15 + i * 0.05), humidity: 55 });

let pipeline: Pipeline;
let db: TestDatabase;
let hub: Hub;
let base: string;
let publisher: mqtt.MqttClient;
const gatewayId = `gw-${id}`;

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, body: await res.json() };
}

async function publish(msgs: Published[]): Promise<void> {
  for (const m of msgs) {
    await publisher.publishAsync(
      `${id}/sensors/${m.sensor}`,
      JSON.stringify({
        sensor: m.sensor,
        temperature: m.temperature,
        humidity: m.humidity,
        units: { temperature: "Cel", humidity: "%RH" },
        ts: m.ts,
      }),
      { qos: 1 },
    );
  }
}

async function rowCount(): Promise<number> {
  const r = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings WHERE sensor_id = ANY($1)", [
    [A, B],
  ]);
  return Number(r.rows[0]!.n);
}

beforeAll(async () => {
  // Health reports off: this file checks what the hub knows without them (hub/test/reports.test.ts has them on).
  pipeline = await startPipeline({
    id,
    gatewayId,
    hubEnv: { DATALAB_API_MAX_RANGE_DAYS: "30", DATALAB_API_MAX_ROWS: "5000" },
    gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "0" },
  });
  ({ db, hub } = pipeline);
  base = `http://127.0.0.1:${hub.httpPort}`;
  publisher = await mqtt.connectAsync(MQTT_URL);
  await publish(published);
  await waitFor(
    async () => (await rowCount()) === published.length * 2,
    `${published.length * 2} readings in Postgres`,
    45_000,
  );
});

afterAll(async () => {
  await publisher?.endAsync();
  await pipeline?.stop();
});

describe("query API on data from the real pipeline", () => {
  it("lists sensors with their last values", async () => {
    const { status, body } = await get(`/api/sensors?prefix=${encodeURIComponent(`api-${id}-`)}`);
    expect(status).toBe(200);
    expect(body.truncated).toBe(false);
    expect(body.sensors.map((s: any) => s.sensorId)).toEqual([A, B]);
    const lastA = published.filter((p) => p.sensor === A).at(-1)!;
    const a = body.sensors[0];
    expect(a.gatewayId).toBe(gatewayId);
    expect(a.metrics.temperature).toEqual({ value: lastA.temperature, unit: "Cel", ts: lastA.ts });
    expect(a.metrics.humidity).toEqual({ value: lastA.humidity, unit: "%RH", ts: lastA.ts });
    // Filter by id (repeatable) and limit.
    const one = await get(`/api/sensors?sensor=${encodeURIComponent(B)}`);
    expect(one.body.sensors.map((s: any) => s.sensorId)).toEqual([B]);
    const cut = await get(`/api/sensors?prefix=${encodeURIComponent(`api-${id}-`)}&limit=1`);
    expect(cut.body.sensors).toHaveLength(1);
    expect(cut.body.truncated).toBe(true);
  });

  it("returns raw readings in a range, in order, exactly as published", async () => {
    const from = T0 + 10 * STEP_MS;
    const to = T0 + 60 * STEP_MS; // exclusive
    const { status, body } = await get(
      `/api/readings?sensor=${encodeURIComponent(A)}&metric=temperature&from=${from}&to=${new Date(to).toISOString()}`,
    );
    expect(status).toBe(200);
    const want = published.filter((p) => p.sensor === A && p.ts >= from && p.ts < to);
    expect(want).toHaveLength(50);
    expect(body.unit).toBe("Cel");
    expect(body.bucketMs).toBeNull();
    expect(body.truncated).toBe(false);
    expect(body.ts).toEqual(want.map((p) => p.ts));
    expect(body.value).toEqual(want.map((p) => p.temperature));

    const newest = await get(
      `/api/readings?sensor=${encodeURIComponent(A)}&metric=humidity&from=-30d&order=desc&limit=3`,
    );
    expect(newest.body.truncated).toBe(true);
    expect(newest.body.value).toEqual(
      published
        .filter((p) => p.sensor === A)
        .slice(-3)
        .reverse()
        .map((p) => p.humidity),
    );
  });

  for (const bucket of ["60s", "7m", "1h"]) {
    it(`aggregates into ${bucket} buckets in the database, matching independent SQL and published values`, async () => {
      const bucketMs = { "60s": 60_000, "7m": 420_000, "1h": 3_600_000 }[bucket]!;
      // A range whose ends cut through buckets.
      const from = T0 + 3 * STEP_MS + 5_000;
      const to = T0 + (N_A - 7) * STEP_MS - 3_000;
      const { status, body } = await get(
        `/api/readings?sensor=${encodeURIComponent(A)}&metric=temperature&from=${from}&to=${to}&bucket=${bucket}`,
      );
      expect(status).toBe(200);
      expect(body.bucketMs).toBe(bucketMs);

      const sql = await db.pool.query<{ b: string; mn: number; mx: number; av: number; n: string }>(
        `SELECT floor(extract(epoch FROM ts) * 1000 / $5) * $5 AS b,
                  min(value) AS mn, max(value) AS mx, avg(value) AS av, count(*) AS n
           FROM readings
          WHERE sensor_id = $1 AND metric = $2 AND ts >= to_timestamp($3 / 1000.0) AND ts < to_timestamp($4 / 1000.0)
          GROUP BY 1 ORDER BY 1`,
        [A, "temperature", from, to, bucketMs],
      );
      expect(sql.rows.length).toBeGreaterThan(1);
      expect(body.ts).toEqual(sql.rows.map((r) => Number(r.b)));
      expect(body.count).toEqual(sql.rows.map((r) => Number(r.n)));
      expect(body.min).toEqual(sql.rows.map((r) => r.mn));
      expect(body.max).toEqual(sql.rows.map((r) => r.mx));
      body.avg.forEach((v: number, i: number) => expect(v).toBeCloseTo(sql.rows[i]!.av, 9));

      // And from the published values, without the database at all.
      const byBucket = new Map<number, number[]>();
      for (const p of published) {
        if (p.sensor !== A || p.ts < from || p.ts >= to) continue;
        const b = Math.floor(p.ts / bucketMs) * bucketMs;
        byBucket.set(b, [...(byBucket.get(b) ?? []), p.temperature]);
      }
      const keys = [...byBucket.keys()].sort((x, y) => x - y);
      expect(body.ts).toEqual(keys);
      keys.forEach((k, i) => {
        const vs = byBucket.get(k)!;
        expect(body.count[i]).toBe(vs.length);
        expect(body.min[i]).toBe(Math.min(...vs));
        expect(body.max[i]).toBe(Math.max(...vs));
        expect(body.avg[i]).toBeCloseTo(vs.reduce((s, v) => s + v, 0) / vs.length, 9);
      });
    });
  }

  it("answers several sensors and metrics in one request, each series as asked alone, averages rounded", async () => {
    const from = T0;
    const to = T0 + N_A * STEP_MS;
    const both =
      `sensor=${encodeURIComponent(A)}&sensor=${encodeURIComponent(B)}` +
      `&metric=temperature&metric=humidity&metric=pressure&from=${from}&to=${to}`;
    const { status, body } = await get(`/api/readings?${both}&bucket=1h`);
    expect(status).toBe(200);
    expect(body.series.map((s: any) => `${s.sensor}/${s.metric}`)).toEqual([
      `${A}/temperature`,
      `${A}/humidity`,
      `${B}/temperature`,
      `${B}/humidity`,
    ]);
    expect(body.missing).toEqual([
      { sensor: A, metric: "pressure" },
      { sensor: B, metric: "pressure" },
    ]);
    for (const s of body.series) {
      const alone = await get(
        `/api/readings?sensor=${encodeURIComponent(s.sensor)}&metric=${s.metric}&from=${from}&to=${to}&bucket=1h`,
      );
      expect(s.ts).toEqual(alone.body.ts);
      expect(s.avg).toEqual(alone.body.avg);
      expect(s.unit).toBe(s.metric === "temperature" ? "Cel" : "%RH");
      expect(s.extent).toEqual({
        first: published.find((p) => p.sensor === s.sensor)!.ts,
        last: published.filter((p) => p.sensor === s.sensor).at(-1)!.ts,
      });
      // At most 12 significant digits: no float noise such as 28.308249999999944.
      for (const v of s.avg as number[])
        expect(
          String(v)
            .replace(/^-?0*|\./g, "")
            .replace(/^0+/, "").length,
        ).toBeLessThanOrEqual(12);
    }
    const raw = await get(`/api/readings?${both}`);
    expect(raw.body.series[2].value).toEqual(published.filter((p) => p.sensor === B).map((p) => p.temperature));
    expect(raw.body.series[2].receivedAt.every((t: number) => t >= raw.body.series[2].ts[0])).toBe(true);
  });

  it("answers CSV pandas opens with the right columns, raw (format=csv) and bucketed (Accept: text/csv)", async () => {
    const q =
      `sensor=${encodeURIComponent(A)}&sensor=${encodeURIComponent(B)}` +
      `&metric=temperature&from=${T0}&to=${T0 + N_A * STEP_MS}`;
    const head = await fetch(`${base}/api/readings?${q}&format=csv`);
    expect(head.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    await head.text();
    const py = [
      "import json, sys, pandas as pd",
      "raw = pd.read_csv(sys.argv[1], parse_dates=['time', 'received_at'])",
      "b = pd.read_csv(sys.argv[2], parse_dates=['time'], storage_options={'Accept': 'text/csv'})",
      "print(json.dumps({'raw': list(raw.columns), 'rawRows': len(raw), 'bCols': list(b.columns), 'bRows': len(b), " +
        "'bCount': int(b['count'].sum()),",
      "  'sensors': sorted(raw['sensor_id'].unique().tolist()), 'tz': str(raw['time'].dt.tz), 'first': " +
        "float(raw['value'].iloc[0]), 'units': raw['unit'].unique().tolist()}))",
    ].join("\n");
    const { stdout } = await execFileAsync(
      "/usr/bin/python3",
      ["-c", py, `${base}/api/readings?${q}&format=csv`, `${base}/api/readings?${q}&bucket=1h`],
      { timeout: 60_000 },
    );
    const r = JSON.parse(stdout);
    expect(r.raw).toEqual(["time", "sensor_id", "metric", "value", "unit", "received_at"]);
    expect(r.rawRows).toBe(N_A + N_B);
    expect(r.sensors).toEqual([A, B].sort());
    expect(r.tz).toBe("UTC");
    expect(r.first).toBe(published[0]!.temperature);
    expect(r.units).toEqual(["Cel"]);
    expect(r.bCols).toEqual(["time", "sensor_id", "metric", "min", "avg", "max", "count", "unit"]);
    expect(r.bCount).toBe(N_A + N_B);
  });

  it("gives sparklines for several sensors in one answer", async () => {
    const { status, body } = await get(
      `/api/sparklines?from=${T0}&to=${T0 + N_A * STEP_MS}&points=20&metric=temperature` +
        `&sensor=${encodeURIComponent(A)}&sensor=${encodeURIComponent(B)}`,
    );
    expect(status).toBe(200);
    expect(body.series.map((s: any) => s.sensorId)).toEqual([A, B]);
    for (const s of body.series) {
      expect(s.metric).toBe("temperature");
      expect(s.ts.length).toBeGreaterThan(5);
      expect(s.ts.length).toBeLessThanOrEqual(21);
    }
    const bVals = published.filter((p) => p.sensor === B).map((p) => p.temperature);
    for (const v of body.series[1].avg) {
      expect(v).toBeGreaterThanOrEqual(Math.min(...bVals));
      expect(v).toBeLessThanOrEqual(Math.max(...bVals));
    }
  });

  it(
    "shows the gateway with what the hub knows, " + "and nulls for what a gateway without health reports does not tell",
    async () => {
      const { status, body } = await get("/api/gateways");
      expect(status).toBe(200);
      const g = body.gateways.find((x: any) => x.gatewayId === gatewayId);
      expect(g).toBeDefined();
      expect(g.online).toBe(true);
      expect(g.sensors).toBe(2);
      expect(g.lastBatch.lastSeq).toBeGreaterThanOrEqual(g.lastBatch.firstSeq);
      expect(g.lastBatch.readings).toBeGreaterThan(0);
      expect(Date.now() - g.lastBatchAt).toBeLessThan(120_000);
      expect(g.deliveryLagMs).toBeGreaterThanOrEqual(0);
      expect(g.backlog).toEqual({ readings: null, bytes: null, oldestAt: null });
      expect(g.quarantine).toBeNull();
      expect(body.onlineWindowMs).toBe(120_000);
    },
  );

  describe("refuses bad input with a 400 naming the parameter", () => {
    const cases: [string, string, RegExp][] = [
      ["no sensor", "/api/readings?metric=temperature", /required/],
      ["a bad time", `/api/readings?sensor=${A}&metric=temperature&from=yesterday`, /ISO-8601/],
      ["from after to", `/api/readings?sensor=${A}&metric=temperature&from=-1h&to=-2h`, /before "to"/],
      ["a range over the limit", `/api/readings?sensor=${A}&metric=temperature&from=-60d`, /at most 30 d/],
      ["too many buckets", `/api/readings?sensor=${A}&metric=temperature&from=-20d&bucket=1m`, /at most 5000/],
      ["a bad bucket", `/api/readings?sensor=${A}&metric=temperature&bucket=fast`, /duration/],
      ["a limit over the maximum", `/api/readings?sensor=${A}&metric=temperature&limit=99999`, /from 1 to 5000/],
      ["a misspelt parameter", `/api/readings?sensor=${A}&metric=temperature&form=-1h`, /unknown parameter/],
      ["a parameter given twice", `/api/readings?sensor=${A}&metric=temperature&from=-1h&from=-2h`, /more than once/],
      ["a bad order", `/api/readings?sensor=${A}&metric=temperature&order=up`, /asc or desc/],
    ];
    const param = {
      "no sensor": "sensor",
      "a bad time": "from",
      "from after to": "from",
      "a range over the limit": "from",
      "too many buckets": "bucket",
      "a bad bucket": "bucket",
      "a limit over the maximum": "limit",
      "a misspelt parameter": "form",
      "a parameter given twice": "from",
      "a bad order": "order",
    } as Record<string, string>;
    for (const [what, path, message] of cases) {
      it(what, async () => {
        const { status, body } = await get(path);
        expect(status).toBe(400);
        expect(body.problems.map((p: any) => p.param)).toContain(param[what]);
        expect(body.error).toMatch(message);
        expect(body.error).toContain(`parameter "${param[what]}"`);
      });
    }
    it("answers 404 for a sensor with no such metric, and 405 for a write", async () => {
      const nf = await get(`/api/readings?sensor=${encodeURIComponent(A)}&metric=pressure`);
      expect(nf.status).toBe(404);
      expect(nf.body.error).toMatch(/no readings of metric "pressure"/);
      const post = await fetch(`${base}/api/sensors`, { method: "POST" });
      expect(post.status).toBe(405);
    });
  });

  it("pushes new readings to a live client as the hub writes them, filtered by sensor", async () => {
    const sse = await openSse(`${base}/api/live?sensor=${encodeURIComponent(A)}`);
    const everything = await openSse(`${base}/api/live`);
    try {
      expect(sse.status).toBe(200);
      await waitFor(
        () => sse.events.some((e) => e.event === "hello") && everything.events.some((e) => e.event === "hello"),
        "the hello events",
      );
      // B first, then A: A's reading arrives after B's was written, so B would have been seen by now.
      const ts = Date.now();
      await publish([
        { sensor: B, ts, temperature: 99.5, humidity: 50 },
        { sensor: A, ts, temperature: 77.25, humidity: 33 },
      ]);
      const received = () =>
        sse.events.filter((e) => e.event === "readings").flatMap((e) => JSON.parse(e.data) as any[]);
      await waitFor(() => received().filter((r) => r.ts === ts).length >= 2, "A's two new readings on the stream");
      // The unfiltered client got B's reading: by then the filtered one would have had it too.
      await waitFor(
        () =>
          everything.events
            .filter((e) => e.event === "readings")
            .some((e) => (JSON.parse(e.data) as any[]).some((r) => r.sensorId === B && r.ts === ts)),
        "B's reading on the unfiltered stream",
      );
      const all = received();
      expect(all.every((r) => r.sensorId === A)).toBe(true);
      expect(
        all
          .filter((r) => r.ts === ts)
          .map((r) => [r.metric, r.value, r.unit, r.gatewayId])
          .sort(),
      ).toEqual([
        ["humidity", 33, "%RH", gatewayId],
        ["temperature", 77.25, "Cel", gatewayId],
      ]);
    } finally {
      sse.close();
      everything.close();
    }
  });
});
