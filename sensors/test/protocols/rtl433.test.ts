import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeRtl433,
  encodeRtl433,
  Rtl433Event,
  Rtl433Parser,
  rtl433Timestamp,
  type DecodeResult,
} from "../../src/protocols/index";
import {
  expectValidReadings,
  feed,
  fixture,
  fixtureLines,
  framesOf,
  readingsOf,
  splitAt,
  unitsByMetric,
  valuesByMetric,
} from "./helpers";

function decodeLine(line: string, options = {}): DecodeResult {
  const event = Rtl433Event.fromBuffer(Buffer.from(line));
  if (!event.ok) throw new Error(event.message);
  return decodeRtl433(event.frame, options);
}

const events = fixtureLines("rtl_433/events.jsonl");
const legacy = fixtureLines("rtl_433/events-legacy.jsonl");

describe("rtl_433 fixtures: every line decodes", () => {
  it("has the documented line counts", () => {
    expect(events).toHaveLength(44);
    expect(legacy).toHaveLength(5);
  });

  it.each([...events, ...legacy].map((line, i) => [i + 1, line] as const))("line %i", (_n, line) => {
    const result = decodeLine(line);
    expect(result.kind).toBe("readings");
    expectValidReadings(result);
    const source = JSON.parse(line) as Record<string, unknown>;
    for (const r of readingsOf(result)) {
      expect(r.sensorId.startsWith("rtl433-")).toBe(true);
      // Fixture times are "@<seconds>s" offsets into a capture, or zone-less wall clock: no ts.
      expect(r.ts).toBeUndefined();
    }
    const v = valuesByMetric(result);
    if (typeof source["temperature_C"] === "number") expect(v["temperature"]).toBe(source["temperature_C"]);
    if (typeof source["humidity"] === "number") expect(v["humidity"]).toBe(source["humidity"]);
    if (typeof source["battery_ok"] === "number") expect(v["battery_ok"]).toBe(source["battery_ok"]);
  });

  it("matches the fixture README's counts: battery_ok on 41 lines, humidity on 20, °F on 6", () => {
    const counts: Record<string, number> = {};
    for (const line of events)
      for (const r of readingsOf(decodeLine(line))) counts[r.metric] = (counts[r.metric] ?? 0) + 1;
    expect(counts["battery_ok"]).toBe(41);
    expect(counts["humidity"]).toBe(20);
    expect(events.filter((l) => l.includes("temperature_F"))).toHaveLength(6);
    expect(counts["temperature"]).toBe(events.filter((l) => /temperature_[CF]/.test(l)).length);
  });

  it("parses the whole file through the stream parser, split anywhere", () => {
    const bytes = fixture("rtl_433/events.jsonl");
    for (const cut of [1, 100, 1234, 5000, bytes.length - 1]) {
      expect(framesOf(feed(new Rtl433Parser(), splitAt(bytes, [cut])))).toHaveLength(44);
    }
  });
});

describe("rtl_433 decode: exact values", () => {
  it("Nexus-TH (line 1): id from model, channel, id", () => {
    const r = decodeLine(events[0]!);
    expect(readingsOf(r).map((x) => x.sensorId)).toEqual(Array(3).fill("rtl433-Nexus-TH-3-201"));
    expect(valuesByMetric(r)).toEqual({ temperature: 29.4, humidity: 30, battery_ok: 1 });
    expect(unitsByMetric(r)).toEqual({ temperature: "Cel", humidity: "%RH", battery_ok: undefined });
  });

  it("Acurite-Optimus: °F converted, one wind_speed though both mi/h and km/h are sent", () => {
    const r = decodeLine(events.find((l) => l.includes("Acurite-Optimus"))!);
    expect(readingsOf(r)[0]!.sensorId).toBe("rtl433-Acurite-Optimus-A-2708");
    const v = valuesByMetric(r);
    expect(v["temperature"]).toBeCloseTo(((54.4 - 32) * 5) / 9, 9);
    expect(readingsOf(r).filter((x) => x.metric === "wind_speed")).toHaveLength(1);
    expect(v["wind_speed"]).toBeCloseTo(6.437 / 3.6, 9);
  });

  it("Fineoffset-WH24: wind, rain, light, uv", () => {
    const r = decodeLine(events.find((l) => l.includes('"id" : 191'))!);
    expect(valuesByMetric(r)).toEqual({
      temperature: 11.8,
      humidity: 78,
      battery_ok: 1,
      wind_speed: 1.12,
      wind_gust: 2.24,
      wind_direction: 266,
      rain: 22.2,
      light: 0,
      uv: 1,
      uv_index: 0,
    });
    expect(unitsByMetric(r)).toMatchObject({
      wind_speed: "m/s",
      wind_gust: "m/s",
      wind_direction: "deg",
      rain: "mm",
      light: "lx",
    });
  });

  it("Fineoffset-WHx080: km/h wind to m/s", () => {
    const v = valuesByMetric(decodeLine(events.find((l) => l.includes("Fineoffset-WHx080"))!));
    expect(v["wind_speed"]).toBeCloseTo(4.76, 9);
    expect(v["wind_gust"]).toBeCloseTo(7.14, 9);
  });

  it("Fineoffset-WH25: hPa to Pa without float noise", () => {
    expect(valuesByMetric(decodeLine(events.find((l) => l.includes("Fineoffset-WH25"))!))["pressure"]).toBe(101610);
  });

  it("Fineoffset-WH0290: battery_ok 1.000 and particulate matter", () => {
    const r = decodeLine(events.find((l) => l.includes("Fineoffset-WH0290"))!);
    expect(valuesByMetric(r)).toEqual({ battery_ok: 1, pm2_5: 10, pm10_estimated: 11 });
    expect(unitsByMetric(r)["pm2_5"]).toBe("ug/m3");
  });

  it("string channels (1R, AF) and °F below zero", () => {
    const r986 = decodeLine(events.find((l) => l.includes("Acurite-986"))!);
    expect(readingsOf(r986)[0]!.sensorId).toBe("rtl433-Acurite-986-1R-17021");
    expect(valuesByMetric(r986)["temperature"]).toBeCloseTo(10.5556, 4);
    const r515 = decodeLine(events.find((l) => l.includes("Acurite-515"))!);
    expect(readingsOf(r515)[0]!.sensorId).toBe("rtl433-Acurite-515-AF-1691");
    expect(valuesByMetric(r515)["temperature"]).toBeCloseTo(-14.1111, 4);
  });

  it('Acurite-Atlas: "lux" key is light; Acurite-606TX id format', () => {
    expect(valuesByMetric(decodeLine(events.find((l) => l.includes("Acurite-Atlas"))!))["light"]).toBe(360);
    expect(readingsOf(decodeLine(events.find((l) => l.includes("Acurite-606TX"))!))[0]!.sensorId).toBe(
      "rtl433-Acurite-606TX-1-163",
    );
  });

  it('legacy style: battery "OK", model with spaces, Oregon gust/average/direction in m/s', () => {
    const nexus = decodeLine(legacy[0]!);
    expect(readingsOf(nexus)[0]!.sensorId).toBe("rtl433-Nexus-Temperature-183");
    expect(valuesByMetric(nexus)).toEqual({ temperature: 24.9 });
    const bthgn = decodeLine(legacy[1]!);
    expect(valuesByMetric(bthgn)).toEqual({ temperature: 20.2, humidity: 53, pressure: 101200, battery_ok: 1 });
    const thgr = decodeLine(legacy[3]!);
    expect(readingsOf(thgr)[0]!.sensorId).toBe("rtl433-Weather-Sensor-THGR122N-1-248");
    const wgr = decodeLine(legacy[4]!);
    expect(valuesByMetric(wgr)).toEqual({ wind_speed: 0.2, wind_gust: 0, wind_direction: 0, battery_ok: 1 });
  });

  it("wall-clock time is ignored unless rtl_433 was told to print UTC", () => {
    expect(readingsOf(decodeLine(legacy[3]!))[0]!.ts).toBeUndefined();
    expect(readingsOf(decodeLine(legacy[3]!, { wallClockIsUtc: true }))[0]!.ts).toBe(Date.UTC(2015, 11, 6, 22, 3, 7));
  });
});

describe("rtl_433 time forms", () => {
  it.each([
    ["@0.084672s", undefined],
    ["2015-12-06 22:03:07", undefined],
    ["1700000000", 1_700_000_000_000],
    ["1700000000.250000", 1_700_000_000_250],
    ["2023-11-14T23:13:20+01:00", 1_700_000_000_000],
    ["whenever", undefined],
  ])("%s", (time, expected) => {
    expect(rtl433Timestamp(time)).toBe(expected);
  });
});

describe("rtl_433 rejects", () => {
  it("events without a usable model", () => {
    expect(Rtl433Event.fromBuffer(Buffer.from('{"id":1,"temperature_C":2}'))).toMatchObject({
      ok: false,
      reason: "missing_field",
    });
    expect(Rtl433Event.fromBuffer(Buffer.from('{"model":5}'))).toMatchObject({ ok: false, reason: "bad_field" });
    expect(Rtl433Event.fromBuffer(Buffer.from("[]"))).toMatchObject({ ok: false, reason: "not_object" });
  });

  it("a known field with a non-numeric value", () => {
    expect(decodeLine('{"model":"X","temperature_C":"hot"}')).toMatchObject({ kind: "error", reason: "bad_field" });
  });

  it("a numeric key the contract refuses as a metric name (a control character, found by the property below)", () => {
    expect(decodeLine('{"model":"X","id":1,"d\u007f":202}')).toMatchObject({ kind: "error", reason: "bad_field" });
    expect(decodeLine(`{"model":"X","id":1,"${"k".repeat(65)}":1}`)).toMatchObject({
      kind: "error",
      reason: "bad_field",
    });
  });

  it("treats an event without measurements as ignored", () => {
    expect(decodeLine('{"model":"Doorbell","id":3,"button":1}')).toMatchObject({
      kind: "ignored",
      category: "no_metrics",
    });
  });

  it("reads numbered probes", () => {
    const r = decodeLine('{"model":"Probe","id":1,"temperature_1_C":20.5,"temperature_2_F":50,"humidity_1":40}');
    expect(valuesByMetric(r)).toEqual({ temperature_1: 20.5, temperature_2: 10, humidity_1: 40 });
  });
});

describe("rtl_433 encode and properties", () => {
  it("round-trips", () => {
    const bytes = encodeRtl433({ time: "@0.1s", model: "Sim-TH", id: 9, temperature_C: 21.5 });
    const frames = framesOf(feed(new Rtl433Parser(), [bytes]));
    expect(valuesByMetric(decodeRtl433(frames[0]!))).toEqual({ temperature: 21.5 });
    expect(() => encodeRtl433({ model: "" })).toThrowError(/not an rtl_433 event/);
  });

  it("never throws on random bytes, and decode never throws on what parses", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), fc.array(fc.nat(1500), { maxLength: 6 }), (bytes, cuts) => {
        const results = feed(
          new Rtl433Parser({ maxLineLength: 200 }),
          splitAt(
            bytes,
            cuts.filter((c) => c <= bytes.length),
          ),
        );
        for (const r of results) if (r.kind === "frame") decodeRtl433(r.frame);
      }),
    );
  });

  it("decode never throws on arbitrary JSON objects with a model", () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom("temperature_C", "humidity", "battery", "wind_avg_km_h", "time", "id", "channel", "x"),
          fc.jsonValue(),
        ),
        (fields) => {
          const event = Rtl433Event.fromObject({ ...fields, model: "M" });
          if (!event.ok) throw new Error("model was set");
          expectValidReadings(decodeRtl433(event.frame));
        },
      ),
    );
  });

  it("never throws on mutated fixture lines, and recovers the next line", () => {
    fc.assert(
      fc.property(
        fc.nat(events.length - 1),
        fc.array(fc.tuple(fc.nat(400), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (i, edits) => {
          const bad = Buffer.from(events[i]!);
          for (const [at, b] of edits) bad[at % bad.length] = b;
          const results = feed(new Rtl433Parser(), [bad, Buffer.from(`\n${events[0]!}\n`)]);
          for (const r of results) if (r.kind === "frame") expectValidReadings(decodeRtl433(r.frame));
          expect(results.at(-1)).toMatchObject({ kind: "frame", raw: Buffer.from(events[0]!) });
        },
      ),
    );
  });

  it("recovers every fixture event interleaved with garbage lines, however chunked", () => {
    const garbage = fc
      .uint8Array({ maxLength: 80 })
      .map((b) => Buffer.concat([Buffer.from(b.filter((x) => x !== 0x0a)), Buffer.of(0x0a)]));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(garbage, fc.nat(events.length - 1)), { maxLength: 15 }),
        fc.array(fc.nat(4000), { maxLength: 8 }),
        (items, cuts) => {
          const lines = items.flatMap(([g, i]) => [g, Buffer.from(`${events[i]!}\n`)]);
          const bytes = Buffer.concat(lines);
          const results = feed(
            new Rtl433Parser(),
            splitAt(
              bytes,
              cuts.filter((c) => c <= bytes.length),
            ),
          );
          // Chunking changes nothing: the same results as each line parsed on its own...
          expect(results).toEqual(lines.flatMap((l) => feed(new Rtl433Parser(), [l])));
          // ...and every event line came back as its own frame, in order.
          const eventRaws = results
            .filter((r) => r.kind === "frame" && events.includes(r.raw.toString()))
            .map((r) => r.raw.toString());
          expect(eventRaws).toEqual(items.map(([, i]) => events[i]));
        },
      ),
    );
  });
});
