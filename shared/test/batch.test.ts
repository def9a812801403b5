import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BatchError, batchMsgId, batchReadings, decodeBatch, decodePayload, encodeBatch, encodePayload, encodeWireMessage, subjects, type Batch } from "../src/index";

const batch: Batch = {
  v: 1,
  gatewayId: "gw1",
  instance: "a1b2c3",
  firstSeq: 10,
  lastSeq: 11,
  sentAt: 1_764_270_000_000,
  messages: [
    {
      source: "mqtt:sensors",
      receivedAt: 1_764_270_000_000,
      payload: '{"name":"s","value":1}',
      encoding: "utf8",
      readings: [
        { seq: 10, sensorId: "s", metric: "value", value: 1, unit: null, ts: 1_764_270_000_000 },
        { seq: 11, sensorId: "s", metric: "other", value: 2.5, unit: "V", ts: 1_764_270_000_001 },
      ],
    },
  ],
};

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof BatchError) return err.reason;
    throw err;
  }
  return "no error";
}

describe("batch codec", () => {
  it("round-trips a batch", () => {
    expect(decodeBatch(encodeBatch(batch))).toEqual(batch);
  });

  it("flattens to readings with the gateway id given by the caller (the subject), not the payload", () => {
    const r = batchReadings(batch, "from-subject");
    expect(r).toHaveLength(2);
    expect(r[1]).toEqual({ gatewayId: "from-subject", instance: "a1b2c3", seq: 11, sensorId: "s", metric: "other", value: 2.5, unit: "V", ts: 1_764_270_000_001, receivedAt: 1_764_270_000_000, source: "mqtt:sensors" });
  });

  it("names the message id after gateway, instance and seq range", () => {
    expect(batchMsgId(batch)).toBe("gw1:a1b2c3:10-11");
  });

  it("refuses an oversized batch before parsing it", () => {
    expect(reason(() => decodeBatch(Buffer.from("x".repeat(100)), { maxBytes: 99, maxMessages: 10 }))).toBe("too_large");
  });

  it("refuses too many messages before validating them", () => {
    const many = { ...batch, messages: Array.from({ length: 11 }, () => batch.messages[0]) };
    expect(reason(() => decodeBatch(encodeBatch(many as Batch), { maxBytes: 1e6, maxMessages: 10 }))).toBe("too_many_messages");
  });

  it.each([
    ["not JSON", "{nope", "not_json"],
    ["an unknown version", JSON.stringify({ ...batch, v: 2 }), "unknown_version"],
    ["a NaN-like value", JSON.stringify(batch).replace('"value":2.5', '"value":"2.5"'), "invalid"],
    ["a sensor id with control characters", JSON.stringify(batch).replace('"sensorId":"s"', '"sensorId":"s\\u0001"'), "invalid"],
  ])("refuses %s", (_what, text, want) => {
    expect(reason(() => decodeBatch(Buffer.from(text)))).toBe(want);
  });

  it("keeps UTF-8 payloads readable and everything else as base64", () => {
    expect(encodePayload(Buffer.from("héllo"))).toEqual({ payload: "héllo", encoding: "utf8" });
    const raw = Buffer.from([0x7e, 0x00, 0xff, 0x10]);
    const e = encodePayload(raw);
    expect(e.encoding).toBe("base64");
    expect(decodePayload(e).equals(raw)).toBe(true);
  });
});

describe("subjects", () => {
  it("derives stream and subjects from the prefix, and reads the gateway back from a subject", () => {
    const s = subjects("lab");
    expect(s.stream).toBe("LAB_READINGS");
    expect(s.readings("gw-1")).toBe("lab.readings.gw-1");
    expect(s.gatewayOf("lab.readings.gw-1")).toBe("gw-1");
    expect(s.gatewayOf("lab.readings.a.b")).toBeUndefined();
    expect(s.gatewayOf("other.readings.gw")).toBeUndefined();
  });
});

describe("encodeWireMessage", () => {
  it("gives exactly JSON.stringify's text for the same wire message (any strings, numbers, units)", () => {
    const reading = fc.record({
      sensorId: fc.string({ unit: "binary" }),
      metric: fc.string({ unit: "binary" }),
      value: fc.double({ noNaN: true, noDefaultInfinity: true }),
      unit: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
      ts: fc.integer({ min: 0, max: 7_258_118_400_000 }),
    });
    const message = fc.record({
      source: fc.string({ unit: "binary" }),
      receivedAt: fc.integer({ min: 0, max: 7_258_118_400_000 }),
      payload: fc.string({ unit: "binary" }),
      encoding: fc.constantFrom("utf8" as const, "base64" as const),
      readings: fc.array(reading, { maxLength: 5 }),
    });
    fc.assert(
      fc.property(message, fc.integer({ min: 1, max: 2 ** 50 }), (m, first) => {
        let seq = first;
        const readings = m.readings.map((r) => ({ seq: seq++, sensorId: r.sensorId, metric: r.metric, value: r.value, unit: r.unit ?? null, ts: r.ts }));
        expect(encodeWireMessage(m, first)).toBe(JSON.stringify({ source: m.source, receivedAt: m.receivedAt, payload: m.payload, encoding: m.encoding, readings }));
      }),
      { numRuns: 2_000 },
    );
  });
});
