import fc from "fast-check";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DataLabJson,
  decodeJsonl,
  encodeJsonl,
  JsonLine,
  JsonlParser,
  JsonlParserStream,
  type ParseResult,
} from "../../src/protocols/index";
import { errorsOf, expectValidReadings, feed, framesOf, readingsOf, splitAt } from "./helpers";

function decodeText(text: string) {
  const parsed = JsonLine.fromText(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return decodeJsonl(parsed.frame);
}

describe("JSON lines frame", () => {
  it("accepts objects only", () => {
    expect(JsonLine.fromText('{"a":1}')).toMatchObject({ ok: true });
    expect(JsonLine.fromText("[1,2]")).toMatchObject({ ok: false, reason: "not_object" });
    expect(JsonLine.fromText("42")).toMatchObject({ ok: false, reason: "not_object" });
    expect(JsonLine.fromText("{oops")).toMatchObject({ ok: false, reason: "not_json" });
    expect(JsonLine.fromText('\uFEFF{"a":1}')).toMatchObject({ ok: true });
  });

  it("round-trips through encode", () => {
    const value = { sensor: "k1", temperature: 21.5 };
    const bytes = encodeJsonl(value);
    expect(bytes.toString()).toBe('{"sensor":"k1","temperature":21.5}\n');
    expect(framesOf(feed(new JsonlParser(), [bytes]))[0]!.value).toEqual(value);
  });
});

describe("decodeJsonl: DataLab JSON, the same decoder as MQTT's", () => {
  it("maps numeric fields to readings; a unit only where the message states one", () => {
    const r = decodeText(
      '{"sensor":"kitchen","temperature":21.5,"humidity_pct":40,"pressure_hPa":1013,"label":"x","ok":true}',
    );
    expectValidReadings(r);
    expect(readingsOf(r)).toEqual([
      { sensorId: "kitchen", metric: "temperature", value: 21.5 },
      { sensorId: "kitchen", metric: "humidity_pct", value: 40 },
      { sensorId: "kitchen", metric: "pressure", value: 1013, unit: "hPa" },
      { sensorId: "kitchen", metric: "ok", value: 1 },
    ]);
    // Units become canonical in the codec's last step (createParser / createMessageDecoder).
    expect(r).toMatchObject({
      notes: [
        { field: "temperature", outcome: "unit_unknown" },
        { field: "humidity_pct", outcome: "unit_unknown" },
      ],
    });
  });

  it("takes the sensor id from sensor, sensorId, sensor_id, id, device or name, in that order", () => {
    expect(readingsOf(decodeText('{"id":7,"name":"n","v":1}'))[0]!.sensorId).toBe("7");
    expect(readingsOf(decodeText('{"name":"n","v":1}'))[0]!.sensorId).toBe("n");
    expect(readingsOf(decodeText('{"device":"d1","v":1}'))[0]!.sensorId).toBe("d1");
    expect(decodeText('{"v":1}')).toMatchObject({ kind: "error", reason: "wrong_shape" });
    expect(decodeText('{"sensor":{"x":1},"v":1}')).toMatchObject({ kind: "error", reason: "bad_sensor_id" });
  });

  it("reads ts, time or timestamp as seconds, milliseconds or ISO 8601 with a zone", () => {
    const ts = (v: string, key = "ts") => readingsOf(decodeText(`{"sensor":"a","v":1,"${key}":${v}}`))[0]!.ts;
    expect(ts("1700000000")).toBe(1_700_000_000_000);
    expect(ts("1700000000", "timestamp")).toBe(1_700_000_000_000);
    expect(ts("1700000000.5", "time")).toBe(1_700_000_000_500);
    expect(ts("1700000000123")).toBe(1_700_000_000_123);
    expect(ts('"2023-11-14T22:13:20Z"')).toBe(1_700_000_000_000);
    expect(ts('"2023-11-14T23:13:20+01:00"')).toBe(1_700_000_000_000);
    // A zone-less time would be read in the gateway's zone: refused rather than guessed.
    expect(decodeText('{"sensor":"a","v":1,"ts":"2023-11-14T22:13:20"}')).toMatchObject({
      kind: "error",
      reason: "bad_timestamp",
    });
    expect(decodeText('{"sensor":"a","v":1,"ts":-5}')).toMatchObject({ kind: "error", reason: "bad_timestamp" });
  });

  it("reports an object without numbers as ignored, not as an error", () => {
    expect(decodeText('{"sensor":"a","status":"boot"}')).toMatchObject({ kind: "ignored", category: "no_readings" });
  });

  it("refuses metric names the schema would refuse", () => {
    expect(decodeText(`{"sensor":"a","${"m".repeat(65)}":1}`)).toMatchObject({ kind: "error", reason: "bad_field" });
    expect(decodeText('{"sensor":"a\\u0001","v":1}')).toMatchObject({ kind: "error", reason: "bad_sensor_id" });
  });

  it("reads a SenML array on one line", () => {
    const parsed = DataLabJson.fromText('[{"bn":"k1/","n":"temperature","u":"Cel","v":21.5}]');
    if (!parsed.ok) throw new Error(parsed.message);
    expect(readingsOf(decodeJsonl(parsed.frame))).toEqual([
      { sensorId: "k1", metric: "temperature", value: 21.5, unit: "Cel" },
    ]);
  });
});

describe("JsonlParserStream", () => {
  it("works as a Transform with objectMode output", async () => {
    const chunks = ['{"sensor":"a",', '"t":1}\nnot json\n{"sensor":"b","t":2}'].map((s) => Buffer.from(s));
    const results: ParseResult<JsonLine>[] = [];
    for await (const r of Readable.from(chunks).pipe(new JsonlParserStream())) results.push(r as ParseResult<JsonLine>);
    expect(results.map((r) => (r.kind === "frame" ? r.frame.value["sensor"] : r.reason))).toEqual([
      "a",
      "not_json",
      "b",
    ]);
  });
});

describe("JsonlParser properties", () => {
  it("never throws and stays bounded on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(2000), { maxLength: 8 }), (bytes, cuts) => {
        const p = new JsonlParser({ maxLineLength: 256 });
        const chunks = splitAt(
          bytes,
          cuts.filter((c) => c <= bytes.length),
        );
        for (const chunk of chunks) {
          for (const r of p.push(chunk)) if (r.kind === "frame") expect(typeof r.frame.value).toBe("object");
          expect(p.bufferedBytes).toBeLessThanOrEqual(256);
        }
        for (const r of p.flush()) if (r.kind === "frame") decodeJsonl(r.frame);
      }),
    );
  });

  it("recovers every valid line among garbage lines, however the bytes are chunked", () => {
    const valid = fc
      .record({
        sensor: fc.string({ minLength: 1, maxLength: 10 }),
        t: fc.double({ noNaN: true, noDefaultInfinity: true }),
      })
      .map((o) => ({ kind: "valid" as const, value: o, bytes: encodeJsonl(o) }));
    // Garbage: any bytes without a newline, ended by one. It may still happen to be a JSON
    // object; "recovered" means each valid line yields its own frame, in order.
    const garbage = fc.uint8Array({ maxLength: 60 }).map((b) => ({
      kind: "garbage" as const,
      bytes: Buffer.concat([Buffer.from(b.filter((x) => x !== 0x0a)), Buffer.of(0x0a)]),
    }));
    fc.assert(
      fc.property(
        fc.array(fc.oneof(valid, garbage), { maxLength: 20 }),
        fc.array(fc.nat(3000), { maxLength: 6 }),
        (items, cuts) => {
          const bytes = Buffer.concat(items.map((i) => i.bytes));
          const results = feed(
            new JsonlParser(),
            splitAt(
              bytes,
              cuts.filter((c) => c <= bytes.length),
            ),
          );
          // Same results as parsing each line on its own.
          const oneByOne = items.flatMap((i) => feed(new JsonlParser(), [i.bytes]));
          expect(results).toEqual(oneByOne);
          const expected = items.flatMap((i) => (i.kind === "valid" ? [JSON.parse(JSON.stringify(i.value))] : []));
          const recovered = results.filter(
            (r) => r.kind === "frame" && items.some((i) => i.kind === "valid" && i.bytes.subarray(0, -1).equals(r.raw)),
          );
          expect(recovered.map((r) => (r.kind === "frame" ? r.frame.value : null))).toEqual(expected);
        },
      ),
    );
  });

  it("never throws on mutated valid lines and still recovers the next line", () => {
    const good = encodeJsonl({ sensor: "s", t: 1.5 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const bad = Buffer.from(good);
          for (const [at, b] of edits) bad[at] = b;
          const results = feed(new JsonlParser(), [bad, Buffer.of(0x0a), good]);
          const last = results.at(-1)!;
          expect(last.kind).toBe("frame");
          expect(
            errorsOf(results).every((e) => ["not_json", "not_utf8", "wrong_shape", "line_too_long"].includes(e.reason)),
          ).toBe(true);
        },
      ),
    );
  });
});
