import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeMySensors,
  encodeMySensors,
  encodeMySensorsSet,
  MySensorsMessage,
  MySensorsParser,
  MysVariable,
  type DecodeResult,
} from "../../src/protocols/index";
import { errorsOf, expectValidReadings, feed, fixture, fixtureLines, framesOf, readingsOf, splitAt } from "./helpers";

function msg(line: string): MySensorsMessage {
  const r = MySensorsMessage.fromLine(line);
  if (!r.ok) throw new Error(r.message);
  return r.frame;
}
const decode = (line: string, options = {}): DecodeResult => decodeMySensors(msg(line), options);

describe("MySensors fixtures", () => {
  it("serial-log.txt: all 38 lines parse; none is a reading or an error", () => {
    const results = feed(new MySensorsParser(), [fixture("mysensors/serial-log.txt")]);
    expect(errorsOf(results)).toEqual([]);
    const decoded = framesOf(results).map((m) => decodeMySensors(m));
    expect(decoded).toHaveLength(38);
    const categories: Record<string, number> = {};
    for (const d of decoded) {
      expect(d.kind).toBe("ignored");
      if (d.kind === "ignored") categories[d.category] = (categories[d.category] ?? 0) + 1;
    }
    expect(categories).toEqual({ log: 33, gateway_ready: 1, presentation: 2, internal: 2 });
  });

  it("serial-log.txt: classifies the real presentation and internal lines", () => {
    expect(decode("0;255;3;0;14;Gateway startup complete.")).toEqual({
      kind: "ignored",
      category: "gateway_ready",
      message: "Gateway startup complete.",
    });
    expect(decode("5;255;0;0;17;2.1.0")).toMatchObject({ kind: "ignored", category: "presentation" });
    expect(decode("5;255;3;0;11;Weather_Station")).toMatchObject({ kind: "ignored", category: "internal" });
    // A log payload with ':' '=' ',' and even an empty field after the colon stays one payload.
    const log = msg("0;255;3;0;9;TSF:MSG:READ,5-5-255,s=255,c=3,t=7,pt=0,l=0,sg=0:");
    expect(log.payload).toBe("TSF:MSG:READ,5-5-255,s=255,c=3,t=7,pt=0,l=0,sg=0:");
  });

  it("controller-doc.txt: exact readings", () => {
    const lines = fixtureLines("mysensors/controller-doc.txt");
    const results = lines.map((l) => decode(l));
    results.forEach(expectValidReadings);
    expect(results.map((r) => (r.kind === "readings" ? r.readings : r))).toEqual([
      expect.objectContaining({ kind: "ignored", category: "gateway_ready" }),
      expect.objectContaining({ kind: "ignored", category: "presentation" }),
      [{ sensorId: "mys-46-0", metric: "temperature", value: 20.3, unit: "Cel" }],
      [{ sensorId: "mys-46-1", metric: "light_level", value: 99.1, unit: "%" }],
      // 102 % is what the node sent; kept (see decode.ts).
      [{ sensorId: "mys-46-255", metric: "battery_level", value: 102, unit: "%EL" }],
      [{ sensorId: "mys-48-3", metric: "level", value: 329 }],
    ]);
  });
});

describe("MySensors frame", () => {
  it("keeps semicolons in the payload (V_POSITION is lat;lon;alt)", () => {
    const m = msg("12;1;1;0;49;55.722526;13.017972;18");
    expect(m.payload).toBe("55.722526;13.017972;18");
    expect(decodeMySensors(m)).toMatchObject({ kind: "ignored", category: "non_numeric" });
  });

  it.each([
    ["46;0;1;0;0", "bad_field"],
    ["46;0;1;0;20.3", "bad_field"],
    ["x;0;1;0;0;1", "bad_field"],
    ["256;0;1;0;0;1", "bad_field"],
    ["46;0;1;2;0;1", "bad_field"],
    ["46;-1;1;0;0;1", "bad_field"],
    ["", "bad_field"],
  ])("rejects %j", (line, reason) => {
    expect(MySensorsMessage.fromLine(line)).toMatchObject({ ok: false, reason });
  });

  it("round-trips through encode, and refuses what the wire cannot carry", () => {
    const bytes = encodeMySensorsSet(46, 0, MysVariable.TEMP, 20.3);
    expect(bytes.toString()).toBe("46;0;1;0;0;20.3\n");
    expect(framesOf(feed(new MySensorsParser(), [bytes]))[0]).toEqual(msg("46;0;1;0;0;20.3"));
    expect(() => encodeMySensors({ nodeId: 300, childId: 0, command: 1, ack: 0, type: 0, payload: "1" })).toThrowError(
      /node id/,
    );
    expect(() =>
      encodeMySensors({ nodeId: 1, childId: 0, command: 1, ack: 0, type: 47, payload: "a\nb" }),
    ).toThrowError(/line break/);
  });
});

describe("MySensors decode", () => {
  it("maps V_ types to metrics and SenML units", () => {
    const one = (line: string) => readingsOf(decode(line))[0]!;
    expect(one("1;2;1;0;1;55.5")).toEqual({ sensorId: "mys-1-2", metric: "humidity", value: 55.5, unit: "%RH" });
    expect(one("1;2;1;0;4;1013.2")).toMatchObject({ metric: "pressure", value: 101320, unit: "Pa" });
    expect(one("1;2;1;0;38;3.31")).toMatchObject({ metric: "voltage", value: 3.31, unit: "V" });
    expect(one("1;2;1;0;16;1")).toMatchObject({ metric: "tripped", value: 1 });
    expect(one("1;2;1;0;17;60")).toMatchObject({ metric: "power", unit: "W" });
    expect(one("1;2;1;0;18;1.5")).toMatchObject({ metric: "energy", unit: "kWh" });
    expect(one("1;2;1;0;6;3.2")).toEqual({ sensorId: "mys-1-2", metric: "rain", value: 3.2 });
    expect(one("1;2;1;0;8;4")).toEqual({ sensorId: "mys-1-2", metric: "wind_speed", value: 4 });
    expect(one("1;2;1;0;10;270")).toMatchObject({ metric: "wind_direction", unit: "deg" });
  });

  it("follows the controller's unit system and pressure unit", () => {
    expect(readingsOf(decode("1;0;1;0;0;68", { unitSystem: "I" }))[0]).toMatchObject({ value: 20, unit: "Cel" });
    expect(readingsOf(decode("1;0;1;0;13;10", { unitSystem: "I" }))[0]).toMatchObject({ value: 25.4, unit: "cm" });
    expect(readingsOf(decode("1;0;1;0;4;101320", { pressureUnit: "Pa" }))[0]).toMatchObject({ value: 101320 });
  });

  it("refines V_LEVEL from the child's presentation when known", () => {
    const sensorTypeOf = (node: number, child: number) => (node === 48 && child === 3 ? 16 : undefined);
    expect(readingsOf(decode("48;3;1;0;37;329.0", { sensorTypeOf }))[0]).toEqual({
      sensorId: "mys-48-3",
      metric: "light",
      value: 329,
      unit: "lx",
    });
    expect(readingsOf(decode("48;4;1;0;37;329.0", { sensorTypeOf }))[0]).toMatchObject({ metric: "level" });
  });

  it("classifies what is not a reading", () => {
    expect(decode("1;2;1;1;0;20")).toMatchObject({ kind: "ignored", category: "ack" });
    expect(decode("1;2;2;0;2;")).toMatchObject({ kind: "ignored", category: "request" });
    expect(decode("1;255;4;0;0;0100")).toMatchObject({ kind: "ignored", category: "stream" });
    expect(decode("1;2;1;0;47;hello")).toMatchObject({ kind: "ignored", category: "non_numeric" });
    expect(decode("1;2;1;0;5;sunny")).toMatchObject({ kind: "ignored", category: "non_numeric" });
    expect(decode("1;255;3;0;40;x")).toMatchObject({ kind: "ignored", category: "internal" });
  });

  it("reports what cannot be decoded with a reason", () => {
    expect(decode("1;2;1;0;0;warm")).toMatchObject({ kind: "error", reason: "bad_field" });
    expect(decode("1;2;1;0;0;")).toMatchObject({ kind: "error", reason: "bad_field" });
    expect(decode("1;2;1;0;0;0x10")).toMatchObject({ kind: "error", reason: "bad_field" });
    expect(decode("1;2;1;0;99;1")).toMatchObject({ kind: "error", reason: "unknown_message_type" });
    expect(decode("1;2;7;0;0;1")).toMatchObject({ kind: "error", reason: "unknown_message_type" });
    expect(decode("1;255;3;0;0;full")).toMatchObject({ kind: "error", reason: "bad_field" });
  });
});

describe("MySensors parser properties", () => {
  const anyMessage = fc
    .record({
      nodeId: fc.integer({ min: 0, max: 255 }),
      childId: fc.integer({ min: 0, max: 255 }),
      command: fc.integer({ min: 0, max: 4 }),
      ack: fc.integer({ min: 0, max: 1 }),
      type: fc.integer({ min: 0, max: 60 }),
      payload: fc.oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
        fc.string({ maxLength: 25 }).map((s) => s.replace(/[\r\n]/g, "")),
      ),
    })
    .map((f) => MySensorsMessage.create(f));

  it("never throws on random bytes; decode never throws and emits schema-valid readings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), fc.array(fc.nat(1500), { maxLength: 6 }), (bytes, cuts) => {
        const p = new MySensorsParser();
        for (const chunk of splitAt(
          bytes,
          cuts.filter((c) => c <= bytes.length),
        )) {
          for (const r of p.push(chunk)) if (r.kind === "frame") expectValidReadings(decodeMySensors(r.frame));
          expect(p.bufferedBytes).toBeLessThanOrEqual(256);
        }
        p.flush();
      }),
    );
  });

  it("recovers every valid message among garbage lines, however chunked", () => {
    const garbage = fc
      .uint8Array({ maxLength: 60 })
      .map((b) => Buffer.concat([Buffer.from(b.filter((x) => x !== 0x0a)), Buffer.of(0x0a)]));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(garbage, anyMessage), { maxLength: 15 }),
        fc.array(fc.nat(2000), { maxLength: 8 }),
        (items, cuts) => {
          const lines = items.flatMap(([g, m]) => [g, m.toBuffer()]);
          const bytes = Buffer.concat(lines);
          const results = feed(
            new MySensorsParser(),
            splitAt(
              bytes,
              cuts.filter((c) => c <= bytes.length),
            ),
          );
          expect(results).toEqual(lines.flatMap((l) => feed(new MySensorsParser(), [l])));
          // Each valid message is the frame parsed from its own line.
          const perLine = lines.map((l) => feed(new MySensorsParser(), [l]));
          items.forEach(([, m], i) => {
            const own = perLine[2 * i + 1]!;
            expect(own).toHaveLength(1);
            expect(own[0]).toMatchObject({ kind: "frame", frame: m });
          });
        },
      ),
    );
  });

  it("never throws on mutated valid lines and recovers the next one", () => {
    const good = Buffer.from("46;0;1;0;0;20.3\n");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const bad = Buffer.from(good);
          for (const [at, b] of edits) bad[at] = b;
          const results = feed(new MySensorsParser(), [bad, Buffer.of(0x0a), good]);
          for (const r of results) if (r.kind === "frame") decodeMySensors(r.frame);
          expect(results.at(-1)).toMatchObject({ kind: "frame", frame: msg("46;0;1;0;0;20.3") });
        },
      ),
    );
  });
});
