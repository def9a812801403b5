/**
 * A group's messages encoded as they arrive (src/outbox/pending.ts) against the contract they
 * stand for: each row's text is the comma-joined JSON.stringify of its WireMessages (in wire
 * format 2, of their fields as arrays), seqs handed out at the commit, whatever was taken off
 * either end of the group meanwhile.
 */
import { inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { encodePayload, type WireFormat } from "@datalab/shared";
import { wireMessageText } from "@datalab/shared/testing";
import { PendingMessages } from "../src/outbox/pending";
import {
  PACKED_TEXT_FACTOR,
  ROW_MAX_BYTES,
  ROW_MAX_MESSAGES,
  type AcceptedMessage,
  type EncodedRow,
} from "../src/outbox/types";
import { rng } from "./support/random";

const TEXTS = ["t", "temp\u00e9rature", 'quo"te', "back\\slash", "new\nline", "\u0001ctl", "\u{1f321}\ufe0f", "\u2028"];
const VALUES = [0, -0.5, 21.375, 1e21, -1.7976931348623157e308, 5e-324, 123456789, 0.1 + 0.2];

function message(rand: (n: number) => number, i: number): Accepted {
  const text = () => `${TEXTS[rand(TEXTS.length)]}${rand(1000)}`;
  const kind = rand(4);
  const payload =
    kind === 0
      ? Buffer.from(Array.from({ length: rand(40) }, () => rand(256)))
      : kind === 1
        ? Buffer.from(`${text()}"\\\u0000\u001f\b\t\n\f\r\u007f${text()}`, "utf8")
        : Buffer.from(JSON.stringify({ i, s: text() }));
  const readings = Array.from({ length: [0, 1, 1, 1, 2, 5, 70][rand(7)]! }, () => ({
    sensorId: text(),
    metric: text(),
    value: VALUES[rand(VALUES.length)]!,
    ...(rand(2) === 0 ? { unit: text() } : {}),
    ts: 1_764_000_000_000 + rand(1_000_000),
    ...(rand(3) === 0 ? { rxWindow: rand(5000) } : {}),
  }));
  return { source: `mqtt:${text()}`, receivedAt: 1_764_000_000_000 + i, payload, readings };
}

type Accepted = Omit<AcceptedMessage, "readings"> & {
  readings: (AcceptedMessage["readings"][number] & { rxWindow?: number })[];
};

/** What the contract says message `m` is on the wire with its seqs from `seq` on. */
function wireOf(m: Accepted, seq: number, format: WireFormat): string {
  return wireMessageText({ ...m, ...encodePayload(m.payload) }, seq, format);
}

/** The rows' texts hold exactly `model`'s messages, in order, with seqs from `firstSeq` on, within the row bounds. */
function expectRows(
  rows: EncodedRow[],
  model: Accepted[],
  firstSeq: number,
  maxReadings: number,
  format: WireFormat,
  deflated = false,
) {
  let seq = firstSeq;
  let i = 0;
  for (const r of rows) {
    const expected: string[] = [];
    const rowFirst = seq;
    for (let k = 0; k < r.m; k++) {
      const m = model[i++]!;
      expected.push(wireOf(m, seq, format));
      seq += m.readings.length;
    }
    expect(r.wire).toBe(expected.join(","));
    expect(r).toMatchObject({ firstSeq: rowFirst, lastSeq: seq - 1, n: seq - rowFirst });
    expect(r.wireBytes).toBe(Buffer.byteLength(r.wire));
    expect(r.receivedAt).toBe(model[i - r.m]!.receivedAt);
    if (r.m > 1) {
      expect(r.m).toBeLessThanOrEqual(ROW_MAX_MESSAGES);
      expect(r.n).toBeLessThanOrEqual(maxReadings);
      expect(r.wireBytes).toBeLessThanOrEqual(deflated ? ROW_MAX_BYTES * PACKED_TEXT_FACTOR : ROW_MAX_BYTES);
    }
  }
  expect(i).toBe(model.length);
}

describe.each([1, 2] as const)("a group's messages, encoded as they arrive, in wire format %i", (format) => {
  it("make the rows the contract says, byte for byte, for awkward text, numbers, payloads and counts", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = rng(seed);
      const model = Array.from({ length: 1 + rand(300) }, (_, i) => message(rand, i));
      const group = new PendingMessages(format);
      for (const m of model) group.push(m, 1);
      // Seqs that cross a digit boundary within the group.
      const firstSeq = [1, 7, 95, 99_990, 2 ** 40 - 3][seed % 5]!;
      const maxReadings = [1, 64, 500][seed % 3]!;
      expectRows(group.rows(firstSeq, maxReadings), model, firstSeq, maxReadings, format);
    }
  });

  it("keep the right messages when the oldest and newest are taken off while more arrive (commits failing)", () => {
    const rand = rng(99);
    const group = new PendingMessages(format);
    let model: Accepted[] = [];
    for (let step = 0; step < 5_000; step++) {
      const r = rand(10);
      if (r < 6 || model.length === 0) {
        const m = message(rand, step);
        group.push(m, step);
        model.push(m);
      } else {
        const oldest = r < 8;
        const taken = oldest ? group.shift() : group.pop();
        const m = oldest ? model.shift()! : model.pop()!;
        expect(taken.readings).toBe(m.readings.length);
      }
      expect(group.length).toBe(model.length);
    }
    expectRows(group.rows(12, 500), model, 12, 500, format);
    group.clear();
    expect(group.rows(1, 500)).toEqual([]);
    model = [message(rand, 1)];
    group.push(model[0]!, 1);
    expectRows(group.rows(1, 500), model, 1, 500, format);
  });

  it("hand back each taken message's weight and delivery", () => {
    const owner = { settled: () => {}, returned: () => {} };
    const group = new PendingMessages(format);
    const rand = rng(5);
    for (let i = 0; i < 4; i++) group.push({ ...message(rand, i), delivery: { id: i + 1, digest: i, owner } }, 10 * i);
    expect(group.pendingDeliveries().map((d) => d.id)).toEqual([1, 2, 3, 4]);
    expect(group.shift()).toMatchObject({ weight: 0, delivery: { id: 1 } });
    expect(group.pop()).toMatchObject({ weight: 30, delivery: { id: 4 } });
    expect(group.pendingDeliveries().map((d) => d.id)).toEqual([2, 3]);
  });

  it("store a trickle's rows deflated, whose text inflates back to the row's", () => {
    const rand = rng(7);
    const model = Array.from({ length: 200 }, (_, i) => message(rand, i));
    const group = new PendingMessages(format);
    for (const m of model) group.push(m, 1);
    // Rows of at most 20 readings: this random text shrinks less than six times, and a row of
    // six pages of it would not fit one packed (it is then stored as it is).
    const rows = group.rows(1, 20, true);
    expect(rows.some((r) => r.packed)).toBe(true);
    for (const r of rows) if (r.packed) expect(inflateRawSync(r.packed).toString("utf8")).toBe(r.wire);
    expectRows(rows, model, 1, 20, format, true);
  });
});
