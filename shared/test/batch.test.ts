import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BatchError,
  batchMsgId,
  batchReadings,
  decodeBatch,
  decodeBatchParts,
  decodePayload,
  encodeBatch,
  encodePayload,
  encodeWireMessage,
  messageAsBatch,
  subjects,
  type Batch,
} from "../src/index";
import { wireMessageText } from "../testing/index";

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
    expect(r[1]).toEqual({
      gatewayId: "from-subject",
      instance: "a1b2c3",
      seq: 11,
      sensorId: "s",
      metric: "other",
      value: 2.5,
      unit: "V",
      ts: 1_764_270_000_001,
      receivedAt: 1_764_270_000_000,
      source: "mqtt:sensors",
    });
  });

  it("names the message id after gateway, instance, seq range and the gateway's digest", () => {
    expect(batchMsgId(batch)).toBe("gw1:a1b2c3:10-11");
    expect(batchMsgId(batch, "q2Xb")).toBe("gw1:a1b2c3:10-11:q2Xb");
  });

  it("refuses an oversized batch before parsing it", () => {
    expect(reason(() => decodeBatch(Buffer.from("x".repeat(100)), { maxBytes: 99, maxMessages: 10 }))).toBe(
      "too_large",
    );
  });

  it("refuses too many messages before validating them", () => {
    const many = { ...batch, messages: Array.from({ length: 11 }, () => batch.messages[0]) };
    expect(reason(() => decodeBatch(encodeBatch(many as Batch), { maxBytes: 1e6, maxMessages: 10 }))).toBe(
      "too_many_messages",
    );
  });

  it.each([
    ["not JSON", "{nope", "not_json"],
    ["an unknown version", JSON.stringify({ ...batch, v: 3 }), "unknown_version"],
    ["a NaN-like value", JSON.stringify(batch).replace('"value":2.5', '"value":"2.5"'), "invalid"],
    [
      "a sensor id with control characters",
      JSON.stringify(batch).replace('"sensorId":"s"', '"sensorId":"s\\u0001"'),
      "invalid",
    ],
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
  it.each([1, 2] as const)(
    "format %i: gives exactly JSON.stringify's text for the same wire message (any strings, numbers, units; " +
      "format 2: of its fields as arrays)",
    (format) => {
      const reading = fc.record({
        sensorId: fc.string({ unit: "binary" }),
        metric: fc.string({ unit: "binary" }),
        value: fc.double({ noNaN: true, noDefaultInfinity: true }),
        unit: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
        ts: fc.integer({ min: 0, max: 7_258_118_400_000 }),
        rxWindow: fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }),
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
          expect(encodeWireMessage(m, first, format)).toBe(wireMessageText(m, first, format));
        }),
        { numRuns: 2_000 },
      );
    },
  );
});

describe("one contract for gateway and hub: each bad message is set aside alone, with its reason", () => {
  const good = batch.messages[0]!;
  const withReading = (patch: Record<string, unknown>, msg: Record<string, unknown> = {}) => ({
    ...good,
    ...msg,
    readings: [{ ...good.readings[0]!, ...patch }],
  });
  // Each class the hub used to refuse a whole batch for (or that Postgres refused in the sink).
  const poisons: [string, unknown, string][] = [
    ["a source over 512 characters", withReading({}, { source: `mqtt:${"t".repeat(508)}` }), "bad_source"],
    ["a NUL in the source", withReading({}, { source: "mqtt:a\u0000b" }), "bad_source"],
    ["a lone surrogate in the metric", withReading({ metric: "\udc00" }), "bad_metric"],
    ["a lone surrogate in the unit", withReading({ unit: "C\ud800" }), "bad_unit"],
    ["a lone surrogate in the sensor id", withReading({ sensorId: "s\udc01" }), "bad_sensor_id"],
    ["a NUL in the unit", withReading({ unit: "\u0000" }), "bad_unit"],
    ["a control character in the unit", withReading({ unit: "C\u001b[31m" }), "bad_unit"],
    ["the largest double as a value", withReading({ value: 1.7976931348623157e308 }), "bad_value"],
    ["a value of -1e101", withReading({ value: -1e101 }), "bad_value"],
    ["a message that is not an object", 42, "invalid_message"],
  ];

  it.each(poisons)("%s: the other messages decode, the poison is refused with its reason", (_what, poison, want) => {
    const text = JSON.stringify({ ...batch, messages: [good, poison, good] });
    expect(reason(() => decodeBatch(Buffer.from(text)))).toBe("invalid");
    const parts = decodeBatchParts(Buffer.from(text));
    expect(parts.batch.messages).toEqual([good, good]);
    expect(parts.indices).toEqual([0, 2]);
    expect(parts.refused).toHaveLength(1);
    expect(parts.refused[0]).toMatchObject({ index: 1, reason: want });
    expect(parts.refused[0]!.error).toMatch(/^message 1: /);
    // The dead letter holds the poison alone, exactly as it came, and is itself a batch.
    const alone = JSON.parse(
      Buffer.from(messageAsBatch(parts.batch, parts.refused[0]!.message)).toString("utf8"),
    ) as Batch;
    expect(alone.messages).toEqual([poison]);
    expect(decodeBatchParts(messageAsBatch(parts.batch, poison)).refused).toHaveLength(1);
  });

  it("pairs of surrogates (emoji) and values up to 1e100 are valid", () => {
    const ok = withReading({ sensorId: "s-\ud83d\ude00", unit: "\ud83c\udf21", value: -1e100 });
    expect(decodeBatch(Buffer.from(JSON.stringify({ ...batch, messages: [ok] }))).messages).toEqual([ok]);
  });

  it("a bad envelope still refuses the whole batch", () => {
    expect(reason(() => decodeBatchParts(Buffer.from(JSON.stringify({ ...batch, instance: "i\u0000" }))))).toBe(
      "invalid",
    );
    expect(reason(() => decodeBatchParts(Buffer.from(JSON.stringify({ ...batch, firstSeq: "1" }))))).toBe("invalid");
  });

  it("names the seq range of the message alone", () => {
    const b = JSON.parse(Buffer.from(messageAsBatch(batch, good)).toString("utf8")) as Batch;
    expect([b.firstSeq, b.lastSeq]).toEqual([10, 11]);
    const none = JSON.parse(
      Buffer.from(messageAsBatch({ ...batch, firstSeq: 3, lastSeq: 9 }, "junk")).toString("utf8"),
    ) as Batch;
    expect([none.firstSeq, none.lastSeq]).toEqual([3, 9]);
  });
});
