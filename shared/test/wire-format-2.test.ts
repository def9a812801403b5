import { describe, expect, it } from "vitest";
import {
  BatchError,
  decodeBatch,
  decodeBatchParts,
  encodeBatch,
  encodeWireMessage,
  messageAsBatch,
  positionalMessage,
  type Batch,
} from "../src/index";

const v1: Batch = {
  v: 1,
  gatewayId: "gw1",
  instance: "a1b2c3",
  firstSeq: 10,
  lastSeq: 12,
  sentAt: 1_764_270_000_000,
  messages: [
    {
      source: "mqtt:sensors/s",
      receivedAt: 1_764_270_000_000,
      payload: '{"name":"s","value":1}',
      encoding: "utf8",
      readings: [
        { seq: 10, sensorId: "s", metric: "value", value: 1, unit: null, ts: 1_764_270_000_000 },
        { seq: 11, sensorId: "s", metric: "other", value: 2.5, unit: "V", ts: 1_764_270_000_001, rxWindow: 2_000 },
      ],
    },
    {
      source: "mqtt:sensors/t",
      receivedAt: 1_764_270_000_005,
      payload: "AAEC",
      encoding: "base64",
      readings: [{ seq: 12, sensorId: "t", metric: "temperature_C", value: -3.25, unit: "C", ts: 1_764_270_000_004 }],
    },
  ],
};
const v2: Batch = { ...v1, v: 2 };

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof BatchError) return err.reason;
    throw err;
  }
  return "accepted";
}

describe("wire format 2: the same fields as arrays", () => {
  it("encodes messages as arrays and decodes back to the named shape, with v saying the format", () => {
    const bytes = encodeBatch(v2);
    const raw = JSON.parse(Buffer.from(bytes).toString("utf8")) as { v: number; messages: unknown[] };
    expect(raw.v).toBe(2);
    // Spelled out: the arrays the contract (shared/src/batch.ts) names, field by field.
    expect(raw.messages).toEqual([
      [
        "mqtt:sensors/s",
        1_764_270_000_000,
        '{"name":"s","value":1}',
        "utf8",
        [
          [10, "s", "value", 1, null, 1_764_270_000_000],
          [11, "s", "other", 2.5, "V", 1_764_270_000_001, 2_000],
        ],
      ],
      [
        "mqtt:sensors/t",
        1_764_270_000_005,
        "AAEC",
        "base64",
        [[12, "t", "temperature_C", -3.25, "C", 1_764_270_000_004]],
      ],
    ]);
    expect(decodeBatch(bytes)).toEqual(v2);
    expect(decodeBatchParts(bytes)).toEqual({ batch: v2, indices: [0, 1], refused: [] });
    // The same batch in format 1 still decodes, to the same messages.
    expect(decodeBatch(encodeBatch(v1)).messages).toEqual(v2.messages);
    expect(bytes.byteLength).toBeLessThan(encodeBatch(v1).byteLength);
  });

  it("a batch joined from encoded messages, as the gateway joins its rows, decodes to those messages", () => {
    const texts = v1.messages.map((m) => encodeWireMessage(m, m.readings[0]!.seq, 2));
    const { messages: _, ...envelope } = v2;
    const text = `${JSON.stringify(envelope).slice(0, -1)},"messages":[${texts.join(",")}]}`;
    expect(decodeBatch(Buffer.from(text))).toEqual(v2);
  });

  const good = positionalMessage(v1.messages[1]!);
  const bad: [string, unknown, string, RegExp][] = [
    ["a message as an object (format 1's shape)", v1.messages[1], "invalid_message", /is an array: \[source/],
    ["a message of four fields", good.slice(0, 4), "invalid_message", /is an array: \[source/],
    ["a reading of five fields", [...good.slice(0, 4), [[12, "t", "m", 1, null]]], "invalid_message", /reading 0: /],
    ["a reading as an object", [...good.slice(0, 4), [{ seq: 12 }]], "invalid_message", /reading 0: /],
    ["a sensor id with a NUL", [...good.slice(0, 4), [[12, "t\u0000", "m", 1, null, 5]]], "bad_sensor_id", /sensorId/],
    ["a value over 1e100", [...good.slice(0, 4), [[12, "t", "m", 1e101, null, 5]]], "bad_value", /value/],
    ["readings that are not an array", [...good.slice(0, 4), 7], "invalid_message", /readings/],
  ];

  it.each(bad)("%s: refused alone with its reason, the others decode", (_what, poison, want, error) => {
    const text = JSON.stringify({ ...v2, messages: [good, poison, good] });
    expect(reason(() => decodeBatch(Buffer.from(text)))).toBe("invalid");
    const parts = decodeBatchParts(Buffer.from(text));
    expect(parts.indices).toEqual([0, 2]);
    expect(parts.batch.messages).toEqual([v1.messages[1], v1.messages[1]]);
    expect(parts.refused).toHaveLength(1);
    expect(parts.refused[0]).toMatchObject({ index: 1, reason: want, message: poison });
    expect(parts.refused[0]!.error).toMatch(error);
    // The dead letter is a format-2 batch holding the poison as it came, refused again on replay.
    const alone = JSON.parse(Buffer.from(messageAsBatch(parts.batch, poison)).toString("utf8")) as Batch;
    expect(alone.v).toBe(2);
    expect(alone.messages).toEqual([poison]);
    expect(decodeBatchParts(messageAsBatch(parts.batch, poison)).refused).toHaveLength(1);
  });

  it("a dead letter of a format-2 message names that message's seqs", () => {
    const b = JSON.parse(Buffer.from(messageAsBatch(v2, positionalMessage(v1.messages[0]!))).toString("utf8")) as Batch;
    expect([b.firstSeq, b.lastSeq]).toEqual([10, 11]);
  });

  it("refuses a version it does not know", () => {
    expect(reason(() => decodeBatch(Buffer.from(JSON.stringify({ ...v2, v: 3 }))))).toBe("unknown_version");
  });
});
