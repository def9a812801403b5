import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "@datalab/shared";
import { tempDir } from "@datalab/shared/testing";
import { loadGatewayConfig } from "../src/config";
import { splitCommandLine } from "../src/sources/rtl433/config";
import { parseSerialPortSpec } from "../src/sources/serial/config";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configError(env: Record<string, string>, file?: string): string {
  try {
    loadGatewayConfig({ env, ...(file ? { file } : {}) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("serial port specs (DATALAB_SERIAL_PORTS)", () => {
  it("reads path[@baud]:protocol, with each protocol's default speed", () => {
    expect(parseSerialPortSpec("/dev/ttyUSB0@57600:mysensors")).toEqual({
      path: "/dev/ttyUSB0",
      baudRate: 57_600,
      protocol: "mysensors",
    });
    expect(parseSerialPortSpec("/dev/ttyUSB0:mysensors").baudRate).toBe(115_200);
    expect(parseSerialPortSpec("/dev/ttyUSB0:jsonl").baudRate).toBe(115_200);
    expect(parseSerialPortSpec("/dev/ttyUSB1:xbee").baudRate).toBe(9_600);
    expect(parseSerialPortSpec("/dev/ttyUSB1:xbee2").baudRate).toBe(9_600);
  });

  it("keeps the colons of a by-path name: the protocol is after the last one", () => {
    expect(parseSerialPortSpec("/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0@38400:xbee2")).toEqual({
      path: "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0",
      baudRate: 38_400,
      protocol: "xbee2",
    });
  });

  it("a list from the environment; every mistake reported at once, naming the variable", () => {
    const cfg = loadGatewayConfig({
      env: {
        DATALAB_SERIAL_PORTS:
          "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0:mysensors, /dev/ttyACM0@9600:jsonl",
      },
    });
    expect(cfg.serialPorts.map((p) => `${p.path}@${p.baudRate}:${p.protocol}`)).toEqual([
      "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0@115200:mysensors",
      "/dev/ttyACM0@9600:jsonl",
    ]);
    const msg = configError({
      DATALAB_SERIAL_PORTS: "/dev/ttyUSB0:zigbee,ttyUSB1:xbee,/dev/ttyUSB3@10:jsonl,/dev/ttyUSB4",
    });
    expect(msg).toContain("DATALAB_SERIAL_PORTS=");
    expect(msg).toContain('unknown protocol "zigbee"; expected one of jsonl, mysensors, xbee, xbee2, rtl433');
    expect(msg).toContain("the path must be absolute");
    expect(msg).toContain("baud rate 10 is not an integer from 50 to 4000000");
    expect(msg).toContain('"/dev/ttyUSB4": expected path[@baud]:protocol');
    // `@fast` is not a speed: it stays part of the path (which then will not exist), never a baud rate.
    expect(loadGatewayConfig({ env: { DATALAB_SERIAL_PORTS: "/dev/x@fast:xbee" } }).serialPorts[0]!.path).toBe(
      "/dev/x@fast",
    );
  });

  it("the config file may list ports as strings or objects; the same port twice is refused", () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir, "gateway.json");
    writeFileSync(
      file,
      JSON.stringify({
        serialPorts: ["/dev/ttyUSB0:mysensors", { path: "/dev/ttyUSB1", protocol: "xbee", baudRate: 115200 }],
      }),
    );
    expect(loadGatewayConfig({ env: {}, file }).serialPorts).toEqual([
      { path: "/dev/ttyUSB0", baudRate: 115_200, protocol: "mysensors" },
      { path: "/dev/ttyUSB1", baudRate: 115_200, protocol: "xbee" },
    ]);
    writeFileSync(file, JSON.stringify({ serialPorts: ["/dev/ttyUSB0:mysensors", "/dev/ttyUSB0@9600:xbee"] }));
    expect(configError({}, file)).toContain("/dev/ttyUSB0 is listed twice");
  });
});

describe("XBee pin scaling (xbeePins)", () => {
  it("pin names apply to every node, 64-bit addresses to one node", () => {
    const cfg = loadGatewayConfig({
      env: {
        DATALAB_XBEE_PINS: JSON.stringify({
          AD0: { metric: "temperature", unit: "Cel", scale: 0.1173, offset: -50 },
          DIO4: false,
          "0013A20040522BAA": { AD1: { metric: "humidity", unit: "%RH", scale: 0.1 } },
        }),
      },
    });
    expect(cfg.xbeePins.pins).toEqual({
      AD0: { metric: "temperature", unit: "Cel", scale: 0.1173, offset: -50 },
      DIO4: false,
    });
    expect(Object.keys(cfg.xbeePins.pinsByNode ?? {})).toEqual(["0013A20040522BAA"]);
  });

  it("mistakes name the variable and the key", () => {
    expect(configError({ DATALAB_XBEE_PINS: "{AD0: 1}" })).toMatch(/DATALAB_XBEE_PINS=.*not JSON/);
    expect(configError({ DATALAB_XBEE_PINS: '{"AD9": {"metric": "t"}}' })).toContain('"AD9" is neither a pin name');
    expect(configError({ DATALAB_XBEE_PINS: '{"AD0": {"metric": "t", "scale": "x"}}' })).toContain("pins.AD0");
    expect(configError({ DATALAB_XBEE_PINS: '{"AD0": {"metric": ""}}' })).toMatch(/pins\.AD0\.metric/);
  });
});

describe("rtl_433 command (DATALAB_RTL433_CMD)", () => {
  it("splits on spaces, quotes group words, no shell", () => {
    expect(splitCommandLine(`rtl_433 -F json -y "{36}c9a126f1e {36}c9a126f1e" -M 'time:iso:tz'`)).toEqual([
      "rtl_433",
      "-F",
      "json",
      "-y",
      "{36}c9a126f1e {36}c9a126f1e",
      "-M",
      "time:iso:tz",
    ]);
    expect(splitCommandLine(`rtl_433 "-F`)).toBeUndefined();
    expect(loadGatewayConfig({ env: {} }).rtl433Command).toEqual([]);
    expect(configError({ DATALAB_RTL433_CMD: `rtl_433 "-F json` })).toMatch(/DATALAB_RTL433_CMD=.*unbalanced quotes/);
  });

  it("MySensors unit system is M or I", () => {
    expect(loadGatewayConfig({ env: {} }).mysensorsUnitSystem).toBe("M");
    expect(configError({ DATALAB_MYSENSORS_UNITS: "metric" })).toMatch(
      /DATALAB_MYSENSORS_UNITS=.*expected M \(metric\) or I \(imperial\)/,
    );
  });
});
