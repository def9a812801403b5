import { describe, expect, it } from "vitest";
import { DecodeError } from "@datalab/shared";
import { checkPayload, decodeJsonPayload } from "../src/decode/index";
import { parseTimestamp } from "../src/decode/timestamp";
import { validateReadings } from "../src/validate";

const decode = (s: string, hint?: string) => validateReadings(decodeJsonPayload(Buffer.from(s), hint ? { sensorIdHint: hint } : {}));

function reasonOf(fn: () => unknown): { reason: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof DecodeError) return { reason: err.reason, message: err.message };
    throw err;
  }
  throw new Error("expected a DecodeError");
}

describe("JSON payload decoding", () => {
  it("decodes the original DataLab message", () => {
    expect(decode('{"name": "sensor1", "value": 5.1}')).toEqual([{ sensorId: "sensor1", metric: "value", value: 5.1 }]);
  });

  it("decodes one sensor with several metrics, units and a time in seconds", () => {
    const r = decode('{"sensor": "s1", "temperature": 21.3, "humidity": 40, "battery": 3.1, "ts": 1764270000}');
    expect(r).toEqual([
      { sensorId: "s1", metric: "temperature", value: 21.3, unit: "Cel", ts: 1764270000000 },
      { sensorId: "s1", metric: "humidity", value: 40, unit: "%RH", ts: 1764270000000 },
      { sensorId: "s1", metric: "battery", value: 3.1, unit: "V", ts: 1764270000000 },
    ]);
  });

  it("takes times in milliseconds and ISO-8601", () => {
    expect(decode('{"sensor":"a","t":1,"ts":1764270000123}')[0]!.ts).toBe(1764270000123);
    expect(decode('{"sensor":"a","t":1,"time":"2025-11-27T19:00:00Z"}')[0]!.ts).toBe(Date.parse("2025-11-27T19:00:00Z"));
    expect(decode('{"sensor":"a","t":1,"timestamp":"2025-11-27T19:00:00.5+01:00"}')[0]!.ts).toBe(Date.parse("2025-11-27T18:00:00.5Z"));
  });

  it("leaves ts unset when the message has none (the gateway uses the receive time)", () => {
    expect(decode('{"sensor":"a","t":1}')[0]!.ts).toBeUndefined();
  });

  it("takes the sensor id from the topic when the payload has none", () => {
    expect(decode('{"temperature": 20}', "kitchen")).toEqual([{ sensorId: "kitchen", metric: "temperature", value: 20, unit: "Cel" }]);
  });

  it("maps booleans to 0/1", () => {
    expect(decode('{"sensor":"door","open":true,"locked":false}').map((r) => r.value)).toEqual([1, 0]);
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
    expect(reasonOf(() => decodeJsonPayload(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), {})).reason).toBe("not_utf8");
  });
});

describe("timestamps", () => {
  it("splits seconds from milliseconds at 1e11", () => {
    expect(parseTimestamp(7e9, "ts")).toBe(7e12);
    expect(() => parseTimestamp(1e11 - 1, "ts")).toThrow(/after the year 2200/);
    expect(parseTimestamp(1e11, "ts")).toBe(1e11);
    expect(parseTimestamp(1764270000.25, "ts")).toBe(1764270000250);
  });
  it("refuses negative numbers", () => {
    expect(reasonOf(() => parseTimestamp(-1, "ts")).reason).toBe("bad_timestamp");
  });
});
