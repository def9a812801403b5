import { describe, expect, it } from "vitest";
import {
  decodeXBee,
  encodeXBee,
  parseExplicitReceivePacket,
  parseIoSample,
  parseReceivePacket,
  XBEE_S2_ADC_MV_PER_COUNT,
  XBeeFrame,
  XBeeParser,
  type DecodeResult,
  type XBeeDecodeOptions,
} from "../../src/protocols/index";
import {
  errorsOf,
  expectValidReadings,
  feed,
  framesOf,
  hex,
  readingsOf,
  unitsByMetric,
  valuesByMetric,
} from "./helpers";
import { summaryFields, xbeeFixtureRows } from "./xbee-fixtures";

const rows = xbeeFixtureRows();

function framesOfRow(r: (typeof rows)[number]): XBeeFrame[] {
  return framesOf(feed(new XBeeParser({ mode: r.mode }), [r.bytes]));
}

/** Expected decode outcome per frame type (decisions documented in decode.ts). */
const OUTCOME: Record<number, DecodeResult["kind"] | "unknown_message_type" | "bad_payload"> = {
  0x90: "bad_payload", // every 0x90 payload in the fixture is free text or binary (RxData, TEST, "12"...)
  0x91: "bad_payload", // "test message"
  0x92: "readings",
  0x83: "unknown_message_type", // Series 1 16-bit IO: not decoded
  0x94: "unknown_message_type", // 1-Wire sensor read: not decoded
  0x88: "ignored",
  0x8a: "ignored",
  0x8b: "ignored",
  0x95: "ignored",
  0x97: "ignored",
  0xa1: "ignored",
};

describe("XBee fixture rows: decode outcome and expected_summary values", () => {
  it.each(rows.map((r) => [r.row, r.frameType, r] as const))("row %i (%s)", (_row, _type, r) => {
    if (r.summary.startsWith("NEGATIVE CASE")) {
      const results = feed(new XBeeParser({ mode: r.mode }), [r.bytes]);
      expect(errorsOf(results).map((e) => e.reason)).toEqual(["bad_checksum"]);
      expect(framesOf(results)).toEqual([]);
      return;
    }
    const frames = framesOfRow(r);
    expect(frames.map((f) => `0x${f.type.toString(16).toUpperCase()}`).join("+")).toBe(r.frameType);
    const fields = summaryFields(r.summary);

    for (const frame of frames) {
      const decoded = decodeXBee(frame);
      expectValidReadings(decoded);
      const outcome = OUTCOME[frame.type];
      if (outcome === "readings" || outcome === "ignored") expect(decoded.kind).toBe(outcome);
      else expect(decoded).toMatchObject({ kind: "error", reason: outcome });
      if (outcome === "ignored") expect(decoded).toMatchObject({ category: "control" });
    }

    const first = frames[0]!;
    if (first.type === 0x90 || first.type === 0x91) {
      const packet = first.type === 0x90 ? parseReceivePacket(first) : parseExplicitReceivePacket(first);
      if (!packet.ok) throw new Error(packet.message);
      expect(packet.frame.source64).toBe(fields.remote64);
      expect(packet.frame.source16).toBe(fields.remote16);
      expect(packet.frame.options).toBe(fields.options);
      expect(packet.frame.data.equals(fields.data!)).toBe(true);
    }

    if (first.type === 0x92) {
      // Row 5 holds two frames; the summary lists #1 then #2 in the same spelling.
      const parts = r.frameType.includes("+") ? r.summary.split("#").slice(1) : [r.summary];
      frames.forEach((frame, i) => {
        const f = summaryFields(parts[i]!);
        const sample = parseIoSample(frame);
        if (!sample.ok) throw new Error(sample.message);
        expect(sample.frame.source64).toBe(f.remote64);
        expect(sample.frame.source16).toBe(f.remote16);
        expect(sample.frame.options).toBe(f.options);
        const defaults = valuesByMetric(decodeXBee(frame));
        // The summary must have given us something to check against.
        expect(Object.keys(f.analogMv ?? f.analogRaw).length).toBeGreaterThan(0);
        // xbee-api states analog values in mV, round(raw * 1200 / 1023): map every AD pin so.
        if (f.analogMv) {
          const mv: XBeeDecodeOptions = {
            pins: Object.fromEntries(
              ["AD0", "AD1", "AD2", "AD3"].map((p) => [
                p,
                { metric: `${p}_mV`, unit: "mV", scale: XBEE_S2_ADC_MV_PER_COUNT },
              ]),
            ),
          };
          const mvValues = valuesByMetric(decodeXBee(frame, mv));
          expect(
            Object.fromEntries(
              Object.entries(mvValues)
                .filter(([k]) => k.endsWith("_mV"))
                .map(([k, v]) => [k.slice(0, -3), Math.round(v)]),
            ),
          ).toEqual(f.analogMv);
        }
        if (f.digitalMv) {
          expect(
            Object.fromEntries(
              Object.entries(defaults)
                .filter(([k]) => k.startsWith("dio"))
                .map(([k, v]) => [`DIO${k.slice(3)}`, v]),
            ),
          ).toEqual(f.digitalMv);
        }
        for (const [pin, raw] of Object.entries(f.analogRaw)) expect(defaults[`adc${pin.slice(2)}`]).toBe(raw);
        for (const [pin, state] of Object.entries(f.digitalRaw)) expect(defaults[`dio${pin.slice(3)}`]).toBe(state);
      });
    }
  });

  it("row 3 (Digi's example) decodes exactly", () => {
    const [frame] = framesOfRow(rows[2]!);
    expect(readingsOf(decodeXBee(frame!))).toEqual([
      { sensorId: "xbee-0013a20040522baa", metric: "adc1", value: 549 },
      { sensorId: "xbee-0013a20040522baa", metric: "dio2", value: 1 },
      { sensorId: "xbee-0013a20040522baa", metric: "dio3", value: 0 },
      { sensorId: "xbee-0013a20040522baa", metric: "dio4", value: 1 },
    ]);
  });

  it("rows 15-17: escaped frame id 0x7D, 0x7E and escaped checksum 0x7E", () => {
    expect(rows.slice(14, 17).map((r) => framesOfRow(r)[0]!.data[0])).toEqual([0x7d, 0x7e, 0x62]);
  });

  it("rows 23 and 24: the same packet in API mode 1 and 2 decodes the same", () => {
    const [a] = framesOfRow(rows[22]!);
    const [b] = framesOfRow(rows[23]!);
    expect(a).toEqual(b);
  });
});

describe("XBee 0x90 payloads", () => {
  const rx = (data: string | Uint8Array) => {
    const parsed = XBeeFrame.fromBuffer(encodeXBee({ type: 0x90, source64: "0013A20040522BAA", data }));
    if (!parsed.ok) throw new Error(parsed.message);
    return decodeXBee(parsed.frame);
  };

  it("reads key=value pairs with any of the separators", () => {
    for (const text of [
      "temperature=21.5,humidity=40",
      "temperature=21.5;humidity=40",
      "temperature=21.5&humidity=40",
      "temperature=21.5 humidity=40\r\n",
    ]) {
      const r = rx(text);
      expectValidReadings(r);
      expect(readingsOf(r)).toEqual([
        { sensorId: "xbee-0013a20040522baa", metric: "temperature", value: 21.5 },
        { sensorId: "xbee-0013a20040522baa", metric: "humidity", value: 40 },
      ]);
    }
  });

  it("reads a JSON object; the sender's address is the sensor id", () => {
    const r = rx('{"id":3,"t":21.5,"ok":true,"label":"x","ts":1700000000}');
    expect(readingsOf(r)).toEqual([
      { sensorId: "xbee-0013a20040522baa", metric: "t", value: 21.5, ts: 1_700_000_000_000 },
      { sensorId: "xbee-0013a20040522baa", metric: "ok", value: 1, ts: 1_700_000_000_000 },
    ]);
  });

  it("skips non-numeric pairs, takes ts, drops a trailing NUL", () => {
    const r = rx(Buffer.concat([Buffer.from("v=3.3,state=ok,ts=1700000000"), Buffer.of(0)]));
    expect(readingsOf(r)).toEqual([
      { sensorId: "xbee-0013a20040522baa", metric: "v", value: 3.3, ts: 1_700_000_000_000 },
    ]);
    expect(rx("state=ok")).toMatchObject({ kind: "ignored", category: "no_metrics" });
  });

  it.each([["TEST"], ["t=1,2"], ["=5"], [""], ["{broken"], ["[1,2]"]])("refuses %j as bad_payload", (text) => {
    expect(rx(text)).toMatchObject({ kind: "error", reason: "bad_payload" });
  });

  it("refuses binary payloads", () => {
    expect(rx(hex("0c01230002f30a"))).toMatchObject({ kind: "error", reason: "bad_payload" });
  });

  it("decodes 0x91 (AO=1) payloads the same way", () => {
    // Fixture row 2's header with a key=value payload instead of "test message".
    const data = Buffer.concat([hex("0013A20040C401A9 0000 E8 E8 0011 C105 01"), Buffer.from("t=5")]);
    expect(readingsOf(decodeXBee(new XBeeFrame(0x91, data)))).toEqual([
      { sensorId: "xbee-0013a20040c401a9", metric: "t", value: 5 },
    ]);
  });

  it("reports a 0x90 shorter than its header as truncated", () => {
    expect(decodeXBee(new XBeeFrame(0x90, hex("0013A200")))).toMatchObject({
      kind: "error",
      reason: "truncated_frame",
    });
  });
});

describe("XBee 0x92 pin mapping", () => {
  const sample = XBeeFrame.fromBuffer(
    encodeXBee(
      {
        type: 0x92,
        source64: "0013a20040522baa",
        digital: { DIO3: 0, DIO4: true },
        analog: { AD1: 549, AD2: 300, SUPPLY: 2816 },
      },
      2,
    ),
    2,
  );
  if (!sample.ok) throw new Error(sample.message);
  const frame = sample.frame;

  it("defaults: raw ADC counts, DIO 0/1, supply voltage in volts", () => {
    const r = decodeXBee(frame);
    expect(valuesByMetric(r)).toEqual({ adc1: 549, adc2: 300, supply_voltage: 3.3, dio3: 0, dio4: 1 });
    expect(unitsByMetric(r)).toEqual({
      adc1: undefined,
      adc2: undefined,
      supply_voltage: "V",
      dio3: undefined,
      dio4: undefined,
    });
  });

  it("applies scale and offset per pin, per node overrides, and false drops a pin", () => {
    const options: XBeeDecodeOptions = {
      // A TMP36 on AD1: 10 mV/°C with a 500 mV offset.
      pins: {
        AD1: { metric: "temperature", unit: "Cel", scale: XBEE_S2_ADC_MV_PER_COUNT / 10, offset: -50 },
        DIO3: false,
      },
      pinsByNode: { "0013a20040522baa": { AD2: { metric: "light_level", unit: "%", scale: 100 / 1023 } } },
    };
    const v = valuesByMetric(decodeXBee(frame, options));
    expect(v["temperature"]).toBeCloseTo((549 * (1200 / 1023)) / 10 - 50, 9);
    expect(v["light_level"]).toBeCloseTo(29.3255, 4);
    expect(v).not.toHaveProperty("dio3");
    expect(v).not.toHaveProperty("adc1");
  });

  it("refuses a sample whose masks do not match its length", () => {
    const good = frame.data;
    expect(decodeXBee(new XBeeFrame(0x92, good.subarray(0, good.length - 1)))).toMatchObject({
      kind: "error",
      reason: "truncated_frame",
    });
    expect(decodeXBee(new XBeeFrame(0x92, Buffer.concat([good, Buffer.of(0)])))).toMatchObject({
      kind: "error",
      reason: "bad_length",
    });
    const twoSamples = Buffer.from(good);
    twoSamples[11] = 2;
    expect(decodeXBee(new XBeeFrame(0x92, twoSamples))).toMatchObject({ kind: "error", reason: "bad_field" });
  });

  it("encode refuses what the frame cannot carry", () => {
    expect(() => encodeXBee({ type: 0x90, source64: "xyz", data: "t=1" })).toThrowError(/source64/);
    expect(() => encodeXBee({ type: 0x92, source64: "0013a20040522baa", analog: { AD9: 1 } })).toThrowError(/AD0..AD6/);
  });
});
