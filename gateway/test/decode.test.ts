import { describe, expect, it } from "vitest";
import { createRegistry, DecodeError } from "@datalab/shared";
import { UnitConfig } from "@datalab/sensors";
import { unitsSchema } from "../src/config";
import { checkPayload, validateReadings } from "../src/ingest/index";
import { type FieldCounter, fieldCounter } from "../src/metrics/index";
import { messageDecoder } from "../src/sources/mqtt/decoder";

const json = messageDecoder("jsonl");
const decode = (s: string, hint?: string) => validateReadings(json(Buffer.from(s), hint ? { sensorIdHint: hint } : {}));

function reasonOf(fn: () => unknown): { reason: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof DecodeError) return { reason: err.reason, message: err.message };
    throw err;
  }
  throw new Error("expected a DecodeError");
}

describe("DataLab JSON over MQTT (the jsonl codec of sensors/src/protocols)", () => {
  it("decodes the original DataLab message", () => {
    expect(decode('{"name": "sensor1", "value": 5.1}')).toEqual([{ sensorId: "sensor1", metric: "value", value: 5.1 }]);
  });

  it("decodes one sensor with several metrics and a time in seconds; bare keys state no unit", () => {
    const r = decode('{"sensor": "s1", "temperature": 21.3, "humidity": 40, "battery": 3.1, "ts": 1764270000}');
    expect(r).toEqual([
      { sensorId: "s1", metric: "temperature", value: 21.3, ts: 1764270000000 },
      { sensorId: "s1", metric: "humidity", value: 40, ts: 1764270000000 },
      { sensorId: "s1", metric: "battery", value: 3.1, ts: 1764270000000 },
    ]);
  });

  it(
    "takes the sensor id from sensor, sensorId, sensor_id, id, device " +
      "or name, and the time from ts, time or timestamp",
    () => {
      expect(decode('{"id":"n1","temperature":20.5,"timestamp":1764270000}')).toEqual([
        { sensorId: "n1", metric: "temperature", value: 20.5, ts: 1764270000000 },
      ]);
      expect(decode('{"device":"d1","t":1}')[0]!.sensorId).toBe("d1");
      expect(decode('{"sensor_id":"d2","t":1}')[0]!.sensorId).toBe("d2");
    },
  );

  it("takes times in milliseconds and ISO-8601 with a zone; refuses one without", () => {
    expect(decode('{"sensor":"a","t":1,"ts":1764270000123}')[0]!.ts).toBe(1764270000123);
    expect(decode('{"sensor":"a","t":1,"time":"2025-11-27T19:00:00Z"}')[0]!.ts).toBe(
      Date.parse("2025-11-27T19:00:00Z"),
    );
    expect(decode('{"sensor":"a","t":1,"timestamp":"2025-11-27T19:00:00.5+01:00"}')[0]!.ts).toBe(
      Date.parse("2025-11-27T18:00:00.5Z"),
    );
    expect(reasonOf(() => decode('{"sensor":"a","t":1,"ts":"2025-11-27T19:00:00"}')).reason).toBe("bad_timestamp");
  });

  it("splits seconds from milliseconds at 1e11", () => {
    expect(decode('{"sensor":"a","t":1,"ts":7e9}')[0]!.ts).toBe(7e12);
    expect(decode('{"sensor":"a","t":1,"ts":1e11}')[0]!.ts).toBe(1e11);
    expect(decode('{"sensor":"a","t":1,"ts":1764270000.25}')[0]!.ts).toBe(1764270000250);
    expect(reasonOf(() => decode('{"sensor":"a","t":1,"ts":99999999999}')).message).toMatch(/outside 1970..2200/);
    expect(reasonOf(() => decode('{"sensor":"a","t":1,"ts":-1}')).reason).toBe("bad_timestamp");
  });

  it("leaves ts unset when the message has none (the gateway uses the receive time)", () => {
    expect(decode('{"sensor":"a","t":1}')[0]!.ts).toBeUndefined();
  });

  it("takes the sensor id from the topic when the payload has none", () => {
    expect(decode('{"temperature": 20}', "kitchen")).toEqual([
      { sensorId: "kitchen", metric: "temperature", value: 20 },
    ]);
  });

  it("maps booleans to 0/1", () => {
    expect(decode('{"sensor":"door","open":true,"locked":false}').map((r) => r.value)).toEqual([1, 0]);
  });

  it("metric names that are Object.prototype's own keys are plain metrics", () => {
    const r = decode('{"sensor":"p","toString":1,"constructor":2,"valueOf":3,"__proto__":4,"hasOwnProperty":5}');
    expect(r.map((x) => [x.metric, x.value, x.unit])).toEqual([
      ["toString", 1, undefined],
      ["constructor", 2, undefined],
      ["valueOf", 3, undefined],
      ["__proto__", 4, undefined],
      ["hasOwnProperty", 5, undefined],
    ]);
    // The same names inside a units map state units only when they are its own keys.
    expect(decode('{"sensor":"p","toString":1,"units":{}}')[0]).toEqual({
      sensorId: "p",
      metric: "toString",
      value: 1,
    });
  });

  it("decodes SenML with base name, base time and relative times", () => {
    const r = decode(
      JSON.stringify([
        { bn: "urn:dev:ow:10e2073a01080063:", bt: 1.320067464e9, bu: "Cel", n: "temperature", v: 23.1 },
        { n: "humidity", u: "%RH", v: 45, t: 60 },
        { n: "door", vb: true },
        { n: "label", vs: "not a number: skipped" },
      ]),
    );
    expect(r).toEqual([
      { sensorId: "urn:dev:ow:10e2073a01080063", metric: "temperature", value: 23.1, unit: "Cel", ts: 1320067464000 },
      { sensorId: "urn:dev:ow:10e2073a01080063", metric: "humidity", value: 45, unit: "%RH", ts: 1320067524000 },
      { sensorId: "urn:dev:ow:10e2073a01080063", metric: "door", value: 1, unit: "Cel", ts: 1320067464000 },
    ]);
  });

  it("splits a SenML name without base name at the last separator", () => {
    const r = decode('[{"n":"room1/temperature","v":20,"u":"Cel","t":1764270000}]');
    expect(r[0]).toMatchObject({ sensorId: "room1", metric: "temperature", value: 20 });
  });
});

describe("units: recorded, never guessed, stored canonical", () => {
  it('{"sensor":"w1","pressure":1013.25,"battery":87} is not stored as Pa and V: its units are unknown', () => {
    expect(decode('{"sensor":"w1","pressure":1013.25,"battery":87}')).toEqual([
      { sensorId: "w1", metric: "pressure", value: 1013.25 },
      { sensorId: "w1", metric: "battery", value: 87 },
    ]);
  });

  it(
    "with pressure configured as hPa it is stored in Pa, the " +
      "canonical pressure unit, as rtl_433's pressure_hPa is",
    () => {
      const units = unitsSchema.parse("pressure=hPa");
      const configured = messageDecoder("jsonl", { units });
      const rtl433 = messageDecoder("rtl433", { units });
      expect(configured(Buffer.from('{"sensor":"w1","pressure":1013.25,"battery":87}'), {})).toEqual([
        { sensorId: "w1", metric: "pressure", value: 101325, unit: "Pa" },
        { sensorId: "w1", metric: "battery", value: 87 },
      ]);
      const fromRtl433 = rtl433(Buffer.from('{"model":"Fineoffset-WH25","id":1,"pressure_hPa":1001.7}'), {});
      expect(fromRtl433).toEqual([
        { sensorId: "rtl433-Fineoffset-WH25-1", metric: "pressure", value: 100170, unit: "Pa" },
      ]);
    },
  );

  it("a unit the message states (units map, key suffix, SenML u) wins over the configured one", () => {
    const d = messageDecoder("jsonl", { units: unitsSchema.parse("pressure=hPa,temperature=F") });
    expect(d(Buffer.from('{"sensor":"a","pressure":1,"units":{"pressure":"kPa"},"temperature_C":20}'), {})).toEqual([
      { sensorId: "a", metric: "pressure", value: 1000, unit: "Pa" },
      { sensorId: "a", metric: "temperature", value: 20, unit: "Cel" },
    ]);
    expect(d(Buffer.from('[{"n":"a/pressure","v":2,"u":"bar"}]'), {})).toEqual([
      { sensorId: "a", metric: "pressure", value: 200000, unit: "Pa" },
    ]);
  });

  it("configured units may be per sensor pattern; the most specific wins", () => {
    const d = messageDecoder("jsonl", {
      units: unitsSchema.parse({ temperature: "Cel", "outdoor-*/temperature": "F" }),
    });
    expect(d(Buffer.from('{"sensor":"outdoor-3","temperature":68}'), {})[0]).toEqual({
      sensorId: "outdoor-3",
      metric: "temperature",
      value: 20,
      unit: "Cel",
    });
    expect(d(Buffer.from('{"sensor":"kitchen","temperature":21}'), {})[0]).toEqual({
      sensorId: "kitchen",
      metric: "temperature",
      value: 21,
      unit: "Cel",
    });
  });

  it("a configured unit outside the table is a config error naming the entry", () => {
    expect(() => unitsSchema.parse("pressure=hpa")).toThrow(/pressure: unit \\?"hpa\\?" is not one of/);
    expect(() => unitsSchema.parse("pressure")).toThrow(/expected metric=unit/);
    expect(unitsSchema.parse("")).toBeInstanceOf(UnitConfig);
  });

  it("key suffixes in every spelling of -C si and -C customary land in one canonical unit", () => {
    const d = (s: string) => json(Buffer.from(s), {});
    expect(
      d('{"sensor":"a","temperature_F":68,"wind_km_h":36,"rain_in":1,"pressure_inHg":29.92,"tyre_PSI":30}'),
    ).toEqual([
      { sensorId: "a", metric: "temperature", value: 20, unit: "Cel" },
      { sensorId: "a", metric: "wind", value: 10, unit: "m/s" },
      { sensorId: "a", metric: "rain", value: 25.4, unit: "mm" },
      { sensorId: "a", metric: "pressure", value: 101320.75888, unit: "Pa" },
      { sensorId: "a", metric: "tyre", value: 206842.718795, unit: "Pa" },
    ]);
  });
});

describe("every numeric field is accounted for", () => {
  it("unknown units, duplicates of one quantity and spare id keys are counted by format and field", () => {
    const registry = createRegistry("test", false);
    const fields = fieldCounter(registry);
    const d = messageDecoder("jsonl", {}, fields);
    d(Buffer.from('{"sensor":"a","id":7,"pressure":1,"temperature_C":20,"temperature_F":68}'), {});
    d(Buffer.from('{"sensor":"a","pressure":2}'), {});
    expect(fields.snapshot()).toEqual({
      "jsonl:id:metadata": 1,
      "jsonl:pressure:unit_unknown": 2,
      "jsonl:temperature_F:superseded": 1,
    });
  });

  it("the counter keeps a bounded number of series whatever keys senders invent", () => {
    const registry = createRegistry("test", false);
    const fields: FieldCounter = fieldCounter(registry);
    for (let i = 0; i < 1000; i++) fields.count("jsonl", [{ field: `k${i}`, outcome: "unit_unknown" }]);
    const snap = fields.snapshot();
    expect(Object.keys(snap).length).toBeLessThanOrEqual(257);
    expect(Object.values(snap).reduce((a, b) => a + b, 0)).toBe(1000);
    expect(snap["jsonl:_other:unit_unknown"]).toBe(1000 - 256);
  });
});

describe("bad input is refused with a reason a person understands", () => {
  it("single quotes (the original DataLab's failing case) name the problem", () => {
    const { reason, message } = reasonOf(() => decode("{'name': 'sensor1'}"));
    expect(reason).toBe("not_json");
    expect(message).toMatch(/double quotes/);
  });

  it.each([
    ["not JSON at all", "hello", "not_json"],
    ["NaN", '{"sensor":"a","t":NaN}', "not_json"],
    ["Infinity", '{"sensor":"a","t":Infinity}', "not_json"],
    ["a string where a number belongs", '{"sensor":"a","t":"21.5"}', "bad_value"],
    ["null value", '{"name":"a","value":null}', "bad_value"],
    ["a number at top level", "42", "wrong_shape"],
    ["no sensor id", '{"temperature": 20}', "wrong_shape"],
    ["no values", '{"sensor":"a"}', "no_readings"],
    ["an empty SenML pack", "[]", "no_readings"],
    ["a sensor id with control characters", '{"name":"bad\\u0000id","value":1}', "bad_sensor_id"],
    ["a sensor id with a newline", '{"sensor":"a\\nb","t":1}', "bad_sensor_id"],
    ["an object as sensor id", '{"sensor":{"x":1},"t":1}', "bad_sensor_id"],
    ["a timestamp in words", '{"sensor":"a","t":1,"ts":"yesterday"}', "bad_timestamp"],
    ["a timestamp after 2200", '{"sensor":"a","t":1,"ts":99999999999999}', "bad_timestamp"],
    ["only whitespace", "   ", "empty"],
  ])("%s", (_what, payload, reason) => {
    expect(reasonOf(() => decode(payload)).reason).toBe(reason);
  });

  it("an empty payload", () => {
    expect(reasonOf(() => checkPayload(Buffer.alloc(0), { maxPayloadBytes: 10 })).reason).toBe("empty");
  });

  it("a payload over the size limit, before it is parsed", () => {
    const { reason, message } = reasonOf(() => checkPayload(Buffer.alloc(65_537, 0x20), { maxPayloadBytes: 65_536 }));
    expect(reason).toBe("too_large");
    expect(message).toMatch(/65537 bytes exceeds the limit of 65536/);
  });

  it("bytes that are not UTF-8", () => {
    expect(reasonOf(() => json(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), {})).reason).toBe("not_utf8");
  });
});
