import type { DecodedReading } from "@datalab/shared";
import { describe, expect, it } from "vitest";
import { createParser, MysSensorType } from "../../src/protocols/index";
import {
  createSerialEncoder,
  MqttEncoder,
  sampleToMessage,
  SENSOR_KINDS,
  Simulator,
  toMqttMessages,
  type SimulatedSample,
} from "../../src/index";

const START = Date.UTC(2026, 0, 1, 12);

function samples(n: number): SimulatedSample[] {
  const sim = new Simulator({ sensors: 4, rate: 1, seed: "enc", startTs: START, kinds: SENSOR_KINDS });
  return Array.from({ length: n }, () => sim.next());
}

/** Feeds bytes in uneven chunks, as a serial port delivers them, and keeps the readings. */
function decodeChunked(
  protocol: Parameters<typeof createParser>[0],
  bytes: Buffer,
  options: object = {},
): DecodedReading[] {
  const codec = createParser(protocol, options as never);
  const out: DecodedReading[] = [];
  for (let i = 0, step = 1; i < bytes.length; i += step, step = ((step * 7) % 23) + 1) {
    for (const o of codec.push(bytes.subarray(i, i + step))) {
      if (o.kind === "error") throw new Error(`${protocol}: ${o.reason} ${o.message}`);
      if (o.kind === "readings") out.push(...o.readings);
    }
  }
  return out;
}

describe("encoders: what the simulator writes, the protocol parsers read back", () => {
  const ss = samples(40);

  it("JSON lines carry every kind, with units and sensor time", () => {
    const enc = createSerialEncoder("jsonl");
    const readings = decodeChunked(
      "jsonl",
      Buffer.concat(ss.flatMap((s) => enc.encode(sampleToMessage(s, SENSOR_KINDS)).map((m) => m.payload))),
    );
    expect(readings).toHaveLength(40 * 5);
    expect(readings[0]).toEqual({
      sensorId: "sim-1",
      metric: "temperature",
      value: ss[0]!.temperature,
      unit: "Cel",
      ts: ss[0]!.ts,
    });
    expect(readings.find((r) => r.metric === "pressure")).toMatchObject({ unit: "Pa", value: ss[0]!.pressure });
  });

  it(
    "MySensors: presentation first, then one C_SET per child; " +
      "light becomes lux through the presented S_LIGHT_LEVEL type",
    () => {
      const enc = createSerialEncoder("mysensors");
      const bytes = Buffer.concat(
        ss.flatMap((s) => enc.encode(sampleToMessage(s, SENSOR_KINDS)).map((m) => m.payload)),
      );
      expect(bytes.toString().split("\n").slice(0, 3)).toEqual([
        "1;255;0;0;17;2.3.2",
        "1;255;3;0;11;sim-1",
        "1;0;0;0;6;temperature",
      ]);
      // A controller learns child types from the presentation; here the decoder is told what it would learn.
      const readings = decodeChunked("mysensors", bytes, {
        sensorTypeOf: (_n: number, child: number) => (child === 2 ? MysSensorType.LIGHT_LEVEL : undefined),
      });
      expect(readings).toHaveLength(40 * 5);
      const first = new Map(readings.slice(0, 5).map((r) => [r.metric, r]));
      expect(first.get("temperature")).toEqual({
        sensorId: "mys-1-0",
        metric: "temperature",
        value: ss[0]!.temperature,
        unit: "Cel",
      });
      expect(first.get("light")).toMatchObject({ sensorId: "mys-1-2", value: ss[0]!.light, unit: "lx" });
      expect(first.get("pressure")).toMatchObject({ value: ss[0]!.pressure, unit: "Pa" });
      expect(first.get("voltage")).toMatchObject({ value: ss[0]!.battery, unit: "V" });
    },
  );

  for (const protocol of ["xbee", "xbee2"] as const) {
    it(
      `XBee API mode ${protocol === "xbee" ? 1 : 2}: 0x90 frames from 0013A200 + node number, ` +
        `key=value payload with sensor time`,
      () => {
        const enc = createSerialEncoder(protocol);
        const readings = decodeChunked(
          protocol,
          Buffer.concat(ss.flatMap((s) => enc.encode(sampleToMessage(s, SENSOR_KINDS)).map((m) => m.payload))),
        );
        expect(readings).toHaveLength(40 * 5);
        // `metric=value` text states no unit: unknown unless the operator configures one.
        expect(readings[0]).toEqual({
          sensorId: "xbee-0013a20000000001",
          metric: "temperature",
          value: ss[0]!.temperature,
          ts: ss[0]!.ts,
        });
        expect(new Set(readings.map((r) => r.sensorId)).size).toBe(4);
      },
    );
  }

  it("rtl_433 JSON: rtl_433's field names and units, ISO time with zone", () => {
    const enc = createSerialEncoder("rtl433");
    const readings = decodeChunked(
      "rtl433",
      Buffer.concat(ss.flatMap((s) => enc.encode(sampleToMessage(s, SENSOR_KINDS)).map((m) => m.payload))),
    );
    const first = new Map(
      readings
        .filter((r) => r.sensorId === "rtl433-DataLab-Sim-1")
        .slice(0, 5)
        .map((r) => [r.metric, r]),
    );
    expect(first.get("temperature")).toEqual({
      sensorId: "rtl433-DataLab-Sim-1",
      metric: "temperature",
      value: ss[0]!.temperature,
      unit: "Cel",
      ts: ss[0]!.ts,
    });
    expect(first.get("pressure")).toMatchObject({ value: ss[0]!.pressure, unit: "Pa" });
    expect(first.get("battery_voltage")).toMatchObject({ value: ss[0]!.battery, unit: "V" });
  });

  it("MQTT: multi-metric on <root>/<id>, and the original {name, value} on <root>", () => {
    const s = ss[0]!;
    expect(new MqttEncoder("multi", "lab").encode(sampleToMessage(s, ["temperature", "humidity"]))[0]).toEqual({
      topic: "lab/sim-1",
      payload: Buffer.from(
        JSON.stringify({
          sensor: "sim-1",
          temperature: s.temperature,
          humidity: s.humidity,
          units: { temperature: "Cel", humidity: "%RH" },
          ts: s.ts,
        }),
      ),
    });
    expect(toMqttMessages(s, "original", "sensors")).toEqual([
      { topic: "sensors", payload: JSON.stringify({ name: "sim-1", value: s.temperature }) },
    ]);
  });

  it("refuses, by name, a metric a protocol cannot carry", () => {
    const msg = { sensorId: "x-1", ts: START, metrics: [{ metric: "co2", value: 400 }] };
    expect(() => createSerialEncoder("mysensors").encode(msg)).toThrow(/MySensors has no variable for metric "co2"/);
    expect(() => createSerialEncoder("rtl433").encode(msg)).toThrow(/no field for metric "co2"/);
    expect(() => createSerialEncoder("xbee").encode({ ...msg, metrics: [{ metric: "a=b", value: 1 }] })).toThrow(
      /key=value/,
    );
  });

  it("keeps node numbers stable and distinct: trailing digits when free, else the next free number", () => {
    const enc = createSerialEncoder("mysensors");
    const nodeOf = (id: string) =>
      Number(
        enc
          .encode({ sensorId: id, metrics: [{ metric: "temperature", value: 1 }] })[0]!
          .payload.toString()
          .split(";")[0],
      );
    expect(nodeOf("a-7")).toBe(7);
    expect(nodeOf("b-7")).toBe(1);
    expect(nodeOf("kitchen")).toBe(2);
    expect(nodeOf("a-7")).toBe(7);
    expect(nodeOf("x-999")).toBe(3);
  });
});
