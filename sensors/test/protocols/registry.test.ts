import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  CodecConfigError,
  createParser,
  encodeXBee,
  isProtocolName,
  MemoryControllerStorage,
  MySensorsController,
  PROTOCOL_NAMES,
  type CodecOutput,
} from "../../src/protocols/index";
import { fixture } from "./helpers";

const count = (outs: CodecOutput<unknown>[]) => {
  const c: Record<string, number> = {};
  for (const o of outs) {
    const key = o.kind === "error" ? `${o.stage}:${o.reason}` : o.kind;
    c[key] = (c[key] ?? 0) + 1;
  }
  return c;
};

describe("createParser", () => {
  it("knows the five protocol names", () => {
    expect(PROTOCOL_NAMES).toEqual(["jsonl", "mysensors", "xbee", "xbee2", "rtl433"]);
    expect(isProtocolName("xbee2")).toBe(true);
    expect(isProtocolName("zigbee")).toBe(false);
  });

  it("rtl433: parse and decode in one step", () => {
    const codec = createParser("rtl433");
    const outs = [...codec.push(fixture("rtl_433/events.jsonl")), ...codec.flush()];
    expect(count(outs)).toEqual({ readings: 44 });
  });

  it("mysensors: readings, ignored traffic, and decode errors with the raw line", () => {
    const codec = createParser("mysensors");
    const outs = codec.push(
      Buffer.concat([fixture("mysensors/controller-doc.txt"), Buffer.from("1;2;1;0;0;warm\nnot a message\n")]),
    );
    expect(count(outs)).toEqual({ ignored: 2, readings: 4, "decode:bad_field": 1, "parse:bad_field": 1 });
    const decodeError = outs.find((o) => o.kind === "error" && o.stage === "decode");
    expect(decodeError?.raw.toString()).toBe("1;2;1;0;0;warm");
  });

  it("mysensors: decode options and the controller work together", () => {
    const controller = new MySensorsController({ storage: new MemoryControllerStorage() });
    const codec = createParser("mysensors", { unitSystem: "I", sensorTypeOf: (n, c) => controller.sensorTypeOf(n, c) });
    for (const o of codec.push(Buffer.from("48;3;0;0;16;\n"))) if (o.kind !== "error") controller.handle(o.frame);
    const outs = codec.push(Buffer.from("48;3;1;0;37;329\n48;1;1;0;0;68\n"));
    expect(outs.flatMap((o) => (o.kind === "readings" ? o.readings : []))).toEqual([
      { sensorId: "mys-48-3", metric: "light", value: 329, unit: "lx" },
      { sensorId: "mys-48-1", metric: "temperature", value: 20, unit: "Cel" },
    ]);
  });

  it("xbee and xbee2 differ only in API mode", () => {
    const frame = { type: 0x92 as const, source64: "0013a20040522baa", analog: { AD1: 0x13 } };
    const m1 = createParser("xbee").push(encodeXBee(frame, 1));
    const m2 = createParser("xbee2").push(encodeXBee(frame, 2));
    expect(encodeXBee(frame, 1).equals(encodeXBee(frame, 2))).toBe(false);
    expect(m1.map((o) => (o.kind === "readings" ? o.readings : o))).toEqual(
      m2.map((o) => (o.kind === "readings" ? o.readings : o)),
    );
  });

  it("xbee: pin options reach decode, node addresses in any case", () => {
    const codec = createParser("xbee", {
      pinsByNode: { "0013A20040522BAA": { AD1: { metric: "moisture", unit: "%", scale: 0.1 } } },
    });
    const outs = codec.push(encodeXBee({ type: 0x92, source64: "0013a20040522baa", analog: { AD1: 500 } }));
    expect(outs[0]).toMatchObject({ kind: "readings", readings: [{ metric: "moisture", value: 50, unit: "%" }] });
  });

  it("jsonl: stream() is a Transform of codec outputs", async () => {
    const codec = createParser("jsonl");
    const outs: CodecOutput<unknown>[] = [];
    const input = Readable.from([Buffer.from('{"sensor":"a","temperature":2'), Buffer.from('1}\n{"x":1}\nnope\n')]);
    for await (const o of input.pipe(codec.stream())) outs.push(o as CodecOutput<unknown>);
    expect(count(outs)).toEqual({ readings: 1, "decode:wrong_shape": 1, "parse:not_json": 1 });
  });

  it("refuses unknown protocols and bad options, naming every problem", () => {
    expect(() => createParser("zigbee" as never)).toThrowError(CodecConfigError);
    expect(() => createParser("mysensors", { unitSystem: "X" as never })).toThrowError(/unitSystem/);
    let error: unknown;
    try {
      createParser("xbee", {
        pins: { AD9: { metric: "" }, DIO1: { metric: "x", scale: Number.NaN } },
        pinsByNode: { zz: {} },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CodecConfigError);
    expect((error as Error).message).toMatch(/pins\.AD9: not a pin name/);
    expect((error as Error).message).toMatch(/pins\.AD9\.metric: metric name is empty/);
    expect((error as Error).message).toMatch(/pins\.DIO1\.scale/);
    expect((error as Error).message).toMatch(/pinsByNode\.zz/);
    expect(() => createParser("xbee", { maxFrameLength: -1 })).toThrowError(/maxFrameLength/);
  });
});
