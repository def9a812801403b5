/**
 * One contract, checked at both ends: whatever the gateway admits, the hub stores. Adversarial
 * MQTT messages (seeded, so a failure names its seed and replays) go through the gateway's own
 * intake (source check, JSON decoder, validation), are framed as the outbox and batcher frame
 * them, and then through the hub's own decoding and the Postgres sink into the real database.
 * The property: not one admitted message is refused by the hub or by Postgres, and every
 * admitted reading comes back from Postgres exactly as it went in (no id collapses into
 * another, no value changes).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BATCH_FORMAT_VERSION,
  batchReadings,
  decodeBatchParts,
  encodePayload,
  encodeWireMessage,
  silentLogger,
  type DecodedReading,
} from "@datalab/shared";
import { createTestDatabase, uniqueId, type TestDatabase } from "@datalab/shared/testing";
import { createGatewayMetrics, messageDecoder } from "@datalab/gateway";
import { createPostgresSink, type Sink } from "@datalab/hub";
import { Ingest } from "../gateway/src/ingest";

/** mulberry32: a small seeded generator, so that every run is reproducible from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// Characters from every class the contract draws a line through: plain, accented, CJK, a
// surrogate pair, lone high and low surrogates, NUL, C0 and C1 controls, DEL, separators.
const CHARS = [
  "a",
  "Z",
  "0",
  "-",
  "_",
  ".",
  " ",
  "é",
  "日",
  "\ud83d\ude00",
  "\ud800",
  "\udc00",
  "\u0000",
  "\u0007",
  "\u001b",
  "\u007f",
  "\u0085",
  "\t",
  "\n",
  "'",
  '"',
  "\\",
  "\u2028",
  "\ufeff",
  "\uffff",
];
// Lengths on both sides of each limit (sensor id 128, metric 64, unit 32).
const LENGTHS = [0, 1, 2, 3, 5, 8, 31, 32, 33, 63, 64, 65, 127, 128, 129];

function text(r: Rand, opts: { clean?: number; lengths?: readonly number[] } = {}): string {
  const n = pick(r, opts.lengths ?? LENGTHS);
  // Mostly clean text, so that many messages pass and the property is not vacuous.
  const clean = r() < (opts.clean ?? 0.6);
  let s = "";
  while (s.length < n) s += clean ? pick(r, ["a", "b", "Z", "0", "-", "_", "é", "日"]) : pick(r, CHARS);
  return s.slice(0, Math.max(n, 0)) || (n === 0 ? "" : "a");
}

// Raw JSON number tokens that JSON.stringify cannot write (they parse to ±Infinity).
const RAW = ["1e400", "-1e400", "1e309"];
const VALUES: readonly unknown[] = [
  21.5,
  0,
  -0,
  1,
  -40,
  3.3,
  1e15,
  2 ** 53 + 2,
  5e-324,
  2.2250738585072014e-308,
  1e100,
  -1e100,
  1.0000000000000002e100,
  1e101,
  -1e150,
  1e155,
  1.7976931348623157e308,
  -1.7976931348623157e308,
  "21.5",
  true,
  false,
  null,
  {},
  [],
  "NaN",
];
const TIMESTAMPS: readonly unknown[] = [
  undefined,
  1_764_270_000,
  1_764_270_000_123,
  0,
  -1,
  1e20,
  7_258_118_400_001,
  "2026-12-04T10:00:00Z",
  1.5,
];
const METRICS = [
  "temperature",
  "humidity",
  "battery",
  "light",
  "pressure_hPa",
  "temp_C",
  "toString",
  "__proto__",
  "constructor",
  "valueOf",
];

function value(r: Rand): unknown {
  if (r() < 0.5) return Math.round((r() - 0.5) * 2e4) / 10;
  if (r() < 0.1) return `__raw${pick(r, RAW)}__`;
  return pick(r, VALUES);
}

function metric(r: Rand): string {
  return r() < 0.6 ? pick(r, METRICS) : text(r, { lengths: [1, 5, 63, 64, 65] });
}

/** One message as an MQTT client could send it: a topic under `sensors`, and payload bytes. */
function message(r: Rand): { topic: string; payload: Buffer } {
  const topic =
    r() < 0.5 ? "sensors" : `sensors/${text(r, { lengths: [1, 8, 64, 490, 498, 499, 500, 520, 600], clean: 0.8 })}`;
  let body: unknown;
  const shape = r();
  if (shape < 0.3) body = { name: text(r), value: value(r) };
  else if (shape < 0.6) {
    const o: Record<string, unknown> = { sensor: text(r) };
    for (let i = 0, n = 1 + Math.floor(r() * 3); i < n; i++) o[metric(r)] = value(r);
    const ts = pick(r, TIMESTAMPS);
    if (ts !== undefined) o.ts = ts;
    body = o;
  } else if (shape < 0.85) {
    const recs: Record<string, unknown>[] = [
      {
        bn: text(r),
        n: metric(r),
        v: value(r),
        ...(r() < 0.7 ? { u: text(r, { lengths: [1, 2, 3, 31, 32, 33] }) } : {}),
      },
    ];
    if (r() < 0.5) recs.push({ n: metric(r), v: value(r) });
    body = recs;
  } else {
    const raw = pick(r, [
      "{'name': 'sensor1'}",
      "",
      "   ",
      "{",
      "[]",
      "null",
      '{"name":"s"}',
      "\u0000\u0001",
      '{"name":"s","value":1}{',
    ]);
    return { topic, payload: Buffer.from(raw, "utf8") };
  }
  const json = JSON.stringify(body).replace(/"__raw([^"]+)__"/g, "$1");
  return { topic, payload: Buffer.from(json, "utf8") };
}

type Admitted = { source: string; receivedAt: number; payload: Buffer; readings: (DecodedReading & { ts: number })[] };

describe("gateway admits ⇒ hub stores (seeded adversarial messages, real Postgres)", () => {
  let db: TestDatabase;
  let sink: Sink;

  beforeAll(async () => {
    db = await createTestDatabase();
    db.pool.on("error", () => undefined);
    sink = await createPostgresSink(db.pool, silentLogger());
  });

  afterAll(async () => {
    await db?.drop();
  });

  it(
    "every message the gateway admits lands in Postgres whole and unchanged; " +
      "what it refuses is quarantined with a reason",
    async () => {
      const runs = Number(process.env.DATALAB_CONTRACT_RUNS) || 60;
      const base = Number(process.env.DATALAB_CONTRACT_SEED) || 20261204;
      const gatewayId = "gw-contract";
      const reasons = new Map<string, number>();
      let admittedMessages = 0;
      let admittedReadings = 0;
      for (let run = 0; run < runs; run++) {
        const seed = base + run;
        const r = rng(seed);
        const admitted: Admitted[] = [];
        const committer = {
          accept: (m: Admitted) => void admitted.push(m),
          quarantine: (q: { reason: string }) => void reasons.set(q.reason, (reasons.get(q.reason) ?? 0) + 1),
        };
        const decoder = messageDecoder("jsonl");
        const ingest = new Ingest(
          committer as never,
          createGatewayMetrics(false),
          { maxPayloadBytes: 65_536 },
          silentLogger(),
          () => 1_764_270_000_000 + run,
        );
        const sent: { topic: string; payload: Buffer }[] = [];
        for (let i = 0; i < 40; i++) {
          const m = message(r);
          sent.push(m);
          const hint = m.topic.includes("/") ? m.topic.slice(m.topic.lastIndexOf("/") + 1) : undefined;
          // What the MQTT source does with each message (gateway/src/sources/mqtt.ts).
          ingest.receive(`mqtt:${m.topic}`, m.payload, decoder, {
            topic: m.topic,
            ...(hint ? { sensorIdHint: hint } : {}),
          });
        }
        if (admitted.length === 0) continue;
        // Framed as the outbox stores each message and the batcher joins them.
        const instance = uniqueId("i").replace(/[^A-Za-z0-9]/g, "");
        let seq = 1;
        const wire = admitted.map((m) => {
          const w = encodeWireMessage(
            { source: m.source, receivedAt: m.receivedAt, ...encodePayload(m.payload), readings: m.readings },
            seq,
          );
          seq += m.readings.length;
          return w;
        });
        const head = {
          v: BATCH_FORMAT_VERSION,
          gatewayId,
          instance,
          firstSeq: 1,
          lastSeq: seq - 1,
          sentAt: 1_764_270_000_000,
        };
        const data = Buffer.from(`${JSON.stringify(head).slice(0, -1)},"messages":[${wire.join(",")}]}`, "utf8");

        const parts = decodeBatchParts(data, { maxBytes: 64 * 1024 * 1024, maxMessages: 100_000 });
        expect(parts.refused, `seed ${seed}: the hub refused what the gateway admitted`).toEqual([]);
        const readings = batchReadings(parts.batch, gatewayId);
        const res = await sink
          .write({ gatewayId, batch: parts.batch, readings, streamSeq: run + 1, bytes: data.byteLength })
          .catch((err: unknown) => {
            throw new Error(`seed ${seed}: Postgres refused what the gateway admitted: ${String(err)}`);
          });
        // A reading repeating a measurement already there (same sensor, metric and time) may be
        // folded into it rather than stored twice: counted, never refused.
        const folded = (res as { folded?: number }).folded ?? 0;
        expect(res.inserted + folded, `seed ${seed}`).toBe(readings.length);

        const rows = await db.pool.query<{
          seq: string;
          sensor_id: string;
          metric: string;
          value: number;
          unit: string | null;
          source: string;
          ts: Date;
        }>("SELECT seq, sensor_id, metric, value, unit, source, ts FROM readings WHERE instance = $1 ORDER BY seq", [
          instance,
        ]);
        const want = admitted.flatMap((m) =>
          m.readings.map((x) => ({
            sensor_id: x.sensorId,
            metric: x.metric,
            value: x.value,
            unit: x.unit ?? null,
            source: m.source,
            ts: new Date(x.ts),
          })),
        );
        expect(rows.rows.length, `seed ${seed}`).toBe(res.inserted);
        // Each stored row is exactly the reading admitted under its seq: no id collapsed into
        // another, no unit or value changed on the way.
        for (const { seq, ...row } of rows.rows) expect(row, `seed ${seed}, seq ${seq}`).toEqual(want[Number(seq) - 1]);
        admittedMessages += admitted.length;
        admittedReadings += want.length;
      }
      // Both sides of the contract were exercised: many admitted, and refusals of each class.
      if (process.env.DATALAB_CONTRACT_RUNS)
        console.log(
          `${runs} runs: ${admittedMessages} messages (${admittedReadings} readings) admitted and stored; ` +
            `refused: ${JSON.stringify([...reasons])}`,
        );
      expect(admittedMessages, JSON.stringify([...reasons])).toBeGreaterThan(runs * 5);
      for (const reason of ["bad_sensor_id", "bad_metric", "bad_value", "bad_unit", "bad_source"])
        expect(reasons.get(reason) ?? 0, reason).toBeGreaterThan(0);
      expect(admittedReadings).toBeGreaterThan(admittedMessages);
    },
  );

  it(
    "each class the hub used to refuse is quarantined by the gateway with a reason; " +
      "distinct lone-surrogate ids are refused, not merged",
    () => {
      const admitted: Admitted[] = [];
      const quarantined: { source: string; reason: string; detail: string }[] = [];
      const committer = {
        accept: (m: Admitted) => void admitted.push(m),
        quarantine: (q: { source: string; reason: string; detail: string }) => void quarantined.push(q),
      };
      const ingest = new Ingest(
        committer as never,
        createGatewayMetrics(false),
        { maxPayloadBytes: 65_536 },
        silentLogger(),
      );
      const decoder = messageDecoder("jsonl");
      const send = (topic: string, body: string) =>
        ingest.receive(`mqtt:${topic}`, Buffer.from(body, "utf8"), decoder, { topic });
      const cases: [string, string, string, RegExp][] = [
        [`sensors/${"t".repeat(505)}`, '{"name":"s1","value":1}', "bad_source", /source is longer than 512 characters/],
        ["sensors", '{"sensor":"s1","\\udc00":1}', "bad_metric", /metric name contains a lone surrogate/],
        ["sensors", '[{"bn":"s1","n":"t","u":"C\\udc00","v":1}]', "bad_unit", /unit contains a lone surrogate/],
        ["sensors", '[{"bn":"s1","n":"t","u":"\\u0000","v":1}]', "bad_unit", /unit contains control characters/],
        ["sensors", '{"name":"s1","value":1.7976931348623157e308}', "bad_value", /1e\+100/],
        ["sensors", '{"name":"s\\udc00","value":1}', "bad_sensor_id", /sensor id contains a lone surrogate/],
        ["sensors", '{"name":"s\\udc01","value":1}', "bad_sensor_id", /sensor id contains a lone surrogate/],
      ];
      for (const [topic, body] of cases) send(topic, body);
      expect(admitted).toEqual([]);
      expect(quarantined.map((q) => q.reason)).toEqual(cases.map((c) => c[2]));
      for (const [i, c] of cases.entries()) expect(quarantined[i]!.detail).toMatch(c[3]);
      // At the limits, admitted: a source of exactly 512 characters, a value of 1e100, an emoji id and unit.
      send(`sensors/${"t".repeat(499)}`, '{"name":"s1","value":1e100}');
      send("sensors", '[{"bn":"s-\\ud83d\\ude00","n":"t","u":"\\ud83c\\udf21","v":-1e100}]');
      expect(admitted.map((m) => m.readings.map((r) => [r.sensorId, r.value]))).toEqual([
        [["s1", 1e100]],
        [["s-\ud83d\ude00", -1e100]],
      ]);
    },
  );
});
