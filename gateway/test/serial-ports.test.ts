/**
 * `pnpm gateway ports`: the listing must work where udevadm is missing (containers, minimal
 * images), where serialport's own list fails. The sysfs fallback is checked on a made-up
 * device tree shaped like the kernel's (a USB serial adapter, an Arduino, a phantom and a
 * real 8250 UART, a virtual console), since no radio is plugged into the test machine.
 */
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "@datalab/shared/testing";
import { formatPortList, listSerialPorts, type PortList } from "../src/sources/serial/ports";
import { runCli } from "./support/gateway";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function file(path: string, text = ""): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

function link(path: string, target: string): void {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path);
}

/** /dev and /sys as the kernel and udev lay them out, in miniature. */
function fakeTree(): { dev: string; sys: string } {
  const root = tempDir("datalab-ports-");
  dirs.push(root);
  const dev = join(root, "dev");
  const sys = join(root, "sys");
  for (const n of ["ttyUSB0", "ttyACM0", "ttyS0", "ttyS1", "tty0"]) file(join(dev, n));
  link(join(dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"), "../../ttyUSB0");
  link(join(dev, "serial/by-id/usb-Arduino__www.arduino.cc__0043_7523230313535161B0B1-if00"), "../../ttyACM0");
  link(join(dev, "serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0"), "../../ttyUSB0");

  // FTDI adapter: ttyUSB0's `device` is the usb-serial port, two levels below the USB device.
  const ftdi = join(sys, "devices/pci0000:00/0000:00:14.0/usb1/1-1");
  file(join(ftdi, "idVendor"), "0403\n");
  file(join(ftdi, "idProduct"), "6001\n");
  file(join(ftdi, "manufacturer"), "FTDI\n");
  file(join(ftdi, "product"), "FT232R USB UART\n");
  file(join(ftdi, "serial"), "A50285BI\n");
  const usbPort = join(ftdi, "1-1:1.0/ttyUSB0");
  mkdirSync(join(usbPort, "tty/ttyUSB0"), { recursive: true });
  link(join(usbPort, "tty/ttyUSB0/device"), "../../../ttyUSB0");
  mkdirSync(join(sys, "bus/usb-serial/drivers/ftdi_sio"), { recursive: true });
  link(join(usbPort, "driver"), "../../../../../../../bus/usb-serial/drivers/ftdi_sio");
  link(join(sys, "class/tty/ttyUSB0"), "../../devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0");

  // Arduino (CDC ACM): ttyACM0's `device` is the interface, one level below the USB device.
  const uno = join(sys, "devices/pci0000:00/0000:00:14.0/usb1/1-2");
  file(join(uno, "idVendor"), "2341\n");
  file(join(uno, "idProduct"), "0043\n");
  mkdirSync(join(uno, "1-2:1.0/tty/ttyACM0"), { recursive: true });
  link(join(uno, "1-2:1.0/tty/ttyACM0/device"), "../../../1-2:1.0");
  link(join(sys, "class/tty/ttyACM0"), "../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0");

  // 8250 UARTs: ttyS0 exists only on paper (type 0), ttyS1 has a chip behind it.
  for (const [n, type] of [
    ["ttyS0", "0"],
    ["ttyS1", "4"],
  ] as const) {
    const d = join(sys, `devices/platform/serial8250/tty/${n}`);
    file(join(d, "type"), `${type}\n`);
    link(join(d, "device"), "../../../serial8250");
    link(join(sys, `class/tty/${n}`), `../../devices/platform/serial8250/tty/${n}`);
  }
  // A virtual console: no `device`.
  mkdirSync(join(sys, "devices/virtual/tty/tty0"), { recursive: true });
  link(join(sys, "class/tty/tty0"), "../../devices/virtual/tty/tty0");
  return { dev, sys };
}

describe("serial port listing without udevadm", () => {
  let tree: { dev: string; sys: string };
  let list: PortList;
  beforeAll(async () => {
    tree = fakeTree();
    list = await listSerialPorts({ devRoot: tree.dev, sysRoot: tree.sys, path: "" });
  });

  it("reads ports from sysfs with their by-id names and USB ids", () => {
    expect(list.method).toBe("sysfs");
    expect(list.note).toMatch(/udevadm not found/);
    expect(list.ports.map((p) => p.path)).toEqual([
      join(tree.dev, "ttyACM0"),
      join(tree.dev, "ttyS1"),
      join(tree.dev, "ttyUSB0"),
    ]);
    const ftdi = list.ports.find((p) => p.path.endsWith("ttyUSB0"))!;
    expect(ftdi).toMatchObject({
      vendorId: "0403",
      productId: "6001",
      manufacturer: "FTDI",
      product: "FT232R USB UART",
      serialNumber: "A50285BI",
      driver: "ftdi_sio",
      byId: [join(tree.dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")],
      byPath: [join(tree.dev, "serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0")],
    });
    const uno = list.ports.find((p) => p.path.endsWith("ttyACM0"))!;
    expect([uno.vendorId, uno.productId]).toEqual(["2341", "0043"]);
    expect(list.ports.find((p) => p.path.endsWith("ttyS1"))!.vendorId).toBeUndefined();
  });

  it("prints the by-id name to use in DATALAB_SERIAL_PORTS", () => {
    const text = formatPortList(list);
    expect(text).toContain(
      `${join(tree.dev, "ttyUSB0")}  USB 0403:6001  FTDI FT232R USB UART  serial A50285BI  (ftdi_sio)`,
    );
    expect(text).toContain(`by-id:   ${join(tree.dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")}`);
    expect(text).toMatch(/DATALAB_SERIAL_PORTS=.*by-id\/usb-Arduino.*:mysensors/);
    expect(text).toContain("(listed with sysfs; udevadm not found");
  });

  it("an empty machine says so instead of printing nothing", async () => {
    const empty = tempDir("datalab-ports-");
    dirs.push(empty);
    const none = await listSerialPorts({ devRoot: join(empty, "dev"), sysRoot: join(empty, "sys"), path: "" });
    expect(none.ports).toEqual([]);
    expect(formatPortList(none)).toMatch(/^No serial ports found/);
  });
});

describe("pnpm gateway ports", () => {
  it("runs with a PATH that has no udevadm: falls back to sysfs, exit code 0, no crash", async () => {
    const bin = tempDir("datalab-path-");
    dirs.push(bin);
    const r = await runCli(["ports", "--json"], { PATH: bin });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as PortList;
    expect(out.method).toBe("sysfs");
    expect(out.note).toMatch(/udevadm not found/);
  });

  it("runs with a udevadm that fails: still lists what sysfs shows, exit code 0", async () => {
    const bin = tempDir("datalab-path-");
    dirs.push(bin);
    file(join(bin, "udevadm"), "#!/bin/sh\necho 'Failed to scan devices' >&2\nexit 1\n");
    chmodSync(join(bin, "udevadm"), 0o755);
    const r = await runCli(["ports", "--json"], { PATH: `${bin}:/usr/bin:/bin` });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as PortList;
    // This machine's own ports, as sysfs shows them, are all there whatever udevadm did.
    const fromSysfs = await listSerialPorts({ useUdev: false });
    expect(out.ports.map((p) => p.path)).toEqual(expect.arrayContaining(fromSysfs.ports.map((p) => p.path)));
  });
});
