/**
 * One decoder per format: the same bytes give the same readings whatever carried them. An
 * MQTT payload goes through `createMessageDecoder` (what the gateway's MQTT source uses); a
 * serial radio's line through `createParser(...).push` in whatever chunks the port delivers;
 * a pipe (stdin) through the codec's Transform stream. Generated DataLab JSON messages, valid
 * and not, must come out identical on all three: readings, field notes, or the same reason.
 */
import fc from "fast-check";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  createMessageDecoder,
  createParser,
  UnitConfig,
  type CodecOutput,
  type MessageResult,
} from "../../src/protocols/index";
import { splitAt } from "./helpers";

const units = new UnitConfig([
  { metric: "pressure", unit: "hPa" },
  { metric: "wind", sensor: "w*", unit: "km/h" },
]);

/** What every carrier must agree on. */
function essence(r: MessageResult | CodecOutput<unknown>): unknown {
  switch (r.kind) {
    case "readings":
      return { kind: r.kind, readings: r.readings, notes: r.notes ?? [] };
    case "ignored":
      return { kind: r.kind, category: r.category, notes: r.notes ?? [] };
    case "error":
      return { kind: r.kind, reason: r.reason };
  }
}

const json = (entries: [string, unknown][]) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`;

const idKey = fc.constantFrom("sensor", "sensorId", "sensor_id", "id", "device", "name");
const idValue = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.integer({ min: 0, max: 10_000 }),
  fc.constant({ x: 1 }),
  fc.constant("bad\u0001id"),
);
const timeKey = fc.constantFrom("ts", "time", "timestamp");
const timeValue = fc.oneof(
  fc.integer({ min: 1_600_000_000, max: 1_900_000_000 }),
  fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  fc.constantFrom("2025-11-27T19:00:00Z", "2025-11-27T19:00:00", "yesterday", -5, 99_999_999_999_999),
);
const metricKey = fc.oneof(
  fc.constantFrom(
    "temperature",
    "humidity",
    "pressure",
    "battery",
    "pressure_hPa",
    "temperature_F",
    "temperature_C",
    "wind_km_h",
    "rain_in",
    "tyre_PSI",
    "value",
    "unit",
  ),
  fc.constantFrom("toString", "constructor", "valueOf", "__proto__", "hasOwnProperty"),
  fc.string({ minLength: 1, maxLength: 10 }),
);
const metricValue = fc.oneof(
  { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom("label", "21.5", null, [1, 2], { nested: 1 }, 1e101) },
);
const unitsMap = fc.dictionary(
  fc.constantFrom("temperature", "pressure", "battery", "toString"),
  fc.constantFrom("Cel", "F", "kPa", "V", "furlong"),
  { maxKeys: 3 },
);

const objectMessage = fc
  .tuple(
    fc.option(fc.tuple(idKey, idValue), { nil: undefined }),
    fc.option(fc.tuple(timeKey, timeValue), { nil: undefined }),
    fc.array(fc.tuple(metricKey, metricValue), { maxLength: 6 }),
    fc.option(unitsMap, { nil: undefined }),
  )
  .map(([id, time, metrics, u]) => {
    const entries: [string, unknown][] = [];
    if (id) entries.push(id);
    entries.push(...metrics);
    if (time) entries.push(time);
    if (u) entries.push(["units", u]);
    return json(entries);
  });

const senmlRecord = fc.record(
  {
    bn: fc.constantFrom("urn:dev:1:", "w1/", ""),
    bt: fc.integer({ min: 1_600_000_000, max: 1_900_000_000 }),
    bu: fc.constantFrom("Cel", "hPa", "km/h"),
    n: fc.constantFrom("temperature", "pressure", "wind", "room/temperature", ""),
    u: fc.constantFrom("Cel", "F", "%RH", "kPa"),
    v: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }),
    vb: fc.boolean(),
    vs: fc.constant("text"),
    t: fc.integer({ min: 0, max: 1000 }),
  },
  // bt on every record: a time relative to "now" (RFC 8428 §4.5.3) differs by the milliseconds between two decodes.
  { requiredKeys: ["bt"] },
);
const senmlMessage = fc.array(senmlRecord, { maxLength: 4 }).map((records) => JSON.stringify(records));

const garbage = fc.oneof(
  fc.constantFrom("{'name': 'sensor1'}", "42", "null", '"text"', "{oops", '{"sensor":"a","t":NaN}'),
  fc.string({ maxLength: 30 }).filter((s) => !s.includes("\n") && s.trim() !== ""),
);

const message = fc.oneof(
  { weight: 6, arbitrary: objectMessage },
  { weight: 3, arbitrary: senmlMessage },
  { weight: 1, arbitrary: garbage },
);

describe("the same bytes give the same readings over MQTT, a serial line and a pipe", () => {
  const mqtt = createMessageDecoder("jsonl", { units });

  it("the issue's example: one reading, whatever carried it", () => {
    const bytes = Buffer.from('{"id":"n1","temperature":20.5,"timestamp":1764270000}');
    const expected = {
      kind: "readings",
      readings: [{ sensorId: "n1", metric: "temperature", value: 20.5, ts: 1764270000000 }],
      notes: [{ field: "temperature", outcome: "unit_unknown" }],
    };
    expect(essence(mqtt(bytes))).toEqual(expected);
    const serial = createParser("jsonl", { units }).push(Buffer.concat([bytes, Buffer.from("\n")]));
    expect(serial.map(essence)).toEqual([expected]);
  });

  it("generated messages, chunked any way on the serial line, decode identically on all three carriers", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(4000), { maxLength: 6 }),
        async (messages, cuts) => {
          const overMqtt = messages.map((m) => essence(mqtt(Buffer.from(m))));

          const serial = createParser("jsonl", { units });
          const bytes = Buffer.from(messages.map((m) => `${m}\n`).join(""));
          const overSerial = splitAt(
            bytes,
            cuts.filter((c) => c <= bytes.length),
          )
            .flatMap((chunk) => serial.push(chunk))
            .concat(serial.flush());
          expect(overSerial.map(essence)).toEqual(overMqtt);

          const overPipe: unknown[] = [];
          for await (const out of Readable.from([bytes]).pipe(createParser("jsonl", { units }).stream()))
            overPipe.push(essence(out as CodecOutput<unknown>));
          expect(overPipe).toEqual(overMqtt);
        },
      ),
      { numRuns: 300 },
    );
  });
});
