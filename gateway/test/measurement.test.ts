import { describe, expect, it } from "vitest";
import { DEFAULT_RX_WINDOWS, formatOf, rxWindowOf, rxWindowsSchema } from "../src/sources/measurement";

const routes = [
  { filter: "rtl_433/+/events", format: "rtl433" },
  { filter: "sensors/#", format: "jsonl" },
  { filter: "mys/out", format: "mysensors" },
];

describe("the fold window of receipt-stamped readings, per format", () => {
  it("defaults: rtl_433 folds its repeats (2 s), every other format is off", () => {
    expect(DEFAULT_RX_WINDOWS).toEqual({ jsonl: 0, mysensors: 0, xbee: 0, xbee2: 0, rtl433: 2_000 });
    expect(rxWindowsSchema.parse(undefined)).toEqual(DEFAULT_RX_WINDOWS);
  });

  it("DATALAB_MEASUREMENT_WINDOWS overrides the formats it names and refuses what it cannot read", () => {
    expect(rxWindowsSchema.parse("rtl433=3000, mysensors=250")).toEqual({
      ...DEFAULT_RX_WINDOWS,
      rtl433: 3_000,
      mysensors: 250,
    });
    expect(rxWindowsSchema.parse("rtl433=0").rtl433).toBe(0);
    for (const bad of ["rtl433", "zigbee=10", "rtl433=-1", "rtl433=3600001", "rtl433=1.5"]) {
      const r = rxWindowsSchema.safeParse(bad);
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.message).toMatch(/format=milliseconds/);
    }
  });

  it("a source's format comes from its name: serial protocol, rtl_433 child, MQTT route", () => {
    expect(formatOf("serial:/dev/serial/by-id/usb-x:y-port0:mysensors", routes)).toBe("mysensors");
    expect(formatOf("serial:/dev/ttyUSB0:xbee2", routes)).toBe("xbee2");
    expect(formatOf("rtl433:rtl_433", routes)).toBe("rtl433");
    expect(formatOf("mqtt:rtl_433/pi/events", routes)).toBe("rtl433");
    expect(formatOf("mqtt:sensors/kitchen", routes)).toBe("jsonl");
    expect(formatOf("mqtt:mys/out", routes)).toBe("mysensors");
    expect(formatOf("mqtt:elsewhere", routes)).toBe("jsonl");
    const of = rxWindowOf({ ...DEFAULT_RX_WINDOWS, mysensors: 250 }, routes);
    expect([
      of("mqtt:rtl_433/pi/events"),
      of("mqtt:sensors/a"),
      of("serial:/dev/ttyUSB0:mysensors"),
      of("mqtt:rtl_433/pi/events"),
    ]).toEqual([2_000, 0, 250, 2_000]);
  });
});
