import { accessSync, constants, existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { errorMessage } from "@datalab/shared";

/** One serial port as `pnpm gateway ports` shows it. */
export interface PortListing {
  /** The kernel name, e.g. /dev/ttyUSB0: it changes with plug order. */
  path: string;
  /** Stable names to put in the config: /dev/serial/by-id/... (per device), by-path (per socket). */
  byId: string[];
  byPath: string[];
  /** USB vendor and product id (hex, lower-case), e.g. 0403:6001 for an FTDI FT232R. */
  vendorId?: string | undefined;
  productId?: string | undefined;
  manufacturer?: string | undefined;
  product?: string | undefined;
  serialNumber?: string | undefined;
  driver?: string | undefined;
}

export interface PortList {
  ports: PortListing[];
  /** `udevadm` (through serialport's list) or `sysfs` (read directly, when udevadm is missing or fails). */
  method: "udevadm" | "sysfs";
  note?: string | undefined;
}

export interface ListOptions {
  /** Where to look for udevadm (default: $PATH). */
  path?: string | undefined;
  /** Roots, for tests on a made-up device tree. */
  devRoot?: string;
  sysRoot?: string;
  /** Use serialport's list (udevadm) when udevadm is available (default true). */
  useUdev?: boolean;
}

/**
 * Lists serial ports. serialport's `SerialPort.list()` runs `udevadm info -e`; on systems
 * without udevadm (containers, minimal images) that fails, and in some versions the failure
 * escapes as an uncaught error. So udevadm is looked for first, and when it is missing or
 * fails the list is read from /dev/serial/by-id and /sys/class/tty instead.
 */
export async function listSerialPorts(o: ListOptions = {}): Promise<PortList> {
  const devRoot = o.devRoot ?? "/dev";
  const sysRoot = o.sysRoot ?? "/sys";
  const links = stableNames(devRoot);
  let note: string | undefined;
  if ((o.useUdev ?? true) && findOnPath("udevadm", o.path ?? process.env.PATH ?? "")) {
    try {
      const { SerialPort } = await import("serialport");
      const listed = await SerialPort.list();
      const ports = listed.map((p) => ({
        path: p.path,
        byId: links.byId.get(p.path) ?? [],
        byPath: links.byPath.get(p.path) ?? [],
        vendorId: p.vendorId?.toLowerCase(),
        productId: p.productId?.toLowerCase(),
        manufacturer: p.manufacturer,
        serialNumber: p.serialNumber,
      }));
      // serialport resolves when udevadm's output ends, even if udevadm then exits with an
      // error (no udev database in a container): what sysfs shows and udev did not is added.
      const known = new Set(ports.map((p) => p.path));
      const extra = sysfsPorts(sysRoot, devRoot, links).filter((p) => !known.has(p.path));
      if (extra.length > 0) note = `${extra.length} port(s) found in sysfs only`;
      return { ports: withLinkedOnly([...ports, ...extra], links, devRoot), method: "udevadm", note };
    } catch (err) {
      note = `udevadm failed (${errorMessage(err)}); read from sysfs instead`;
    }
  } else {
    note = "udevadm not found; read from /dev/serial/by-id and /sys/class/tty instead";
  }
  return { ports: withLinkedOnly(sysfsPorts(sysRoot, devRoot, links), links, devRoot), method: "sysfs", note };
}

/** A by-id link whose device the listing missed still deserves a row: it is what users need. */
function withLinkedOnly(ports: PortListing[], links: StableNames, devRoot: string): PortListing[] {
  const known = new Set(ports.map((p) => p.path));
  for (const [target, byId] of links.byId) {
    if (known.has(target) || !target.startsWith(devRoot)) continue;
    ports.push({ path: target, byId, byPath: links.byPath.get(target) ?? [] });
  }
  return ports.sort((a, b) => a.path.localeCompare(b.path));
}

export function findOnPath(bin: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, bin);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface StableNames {
  /** Device path (e.g. /dev/ttyUSB0) → the links to it. */
  byId: Map<string, string[]>;
  byPath: Map<string, string[]>;
}

function stableNames(devRoot: string): StableNames {
  return { byId: linksIn(join(devRoot, "serial", "by-id")), byPath: linksIn(join(devRoot, "serial", "by-path")) };
}

function linksIn(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out; // udev removes the directory when no USB serial device is plugged in
  }
  for (const name of names.sort()) {
    const link = join(dir, name);
    try {
      const target = resolve(dirname(link), readlinkSync(link));
      out.set(target, [...(out.get(target) ?? []), link]);
    } catch {
      // not a symlink
    }
  }
  return out;
}

/**
 * Ports from sysfs: every /sys/class/tty entry with a `device` (virtual consoles and ptys
 * have none), minus the legacy 8250 ports that exist only on paper (`type` 0: no UART found).
 * USB ids come from the first ancestor of the device directory that has `idVendor` (the USB
 * device; a ttyUSB's `device` is the usb-serial port, a ttyACM's the interface).
 */
function sysfsPorts(sysRoot: string, devRoot: string, links: StableNames): PortListing[] {
  const classDir = join(sysRoot, "class", "tty");
  let names: string[];
  try {
    names = readdirSync(classDir);
  } catch {
    return [];
  }
  const out: PortListing[] = [];
  for (const name of names) {
    const dir = join(classDir, name);
    const deviceLink = join(dir, "device");
    if (!existsSync(deviceLink)) continue;
    const driver = linkName(join(deviceLink, "driver"));
    if (/^ttyS\d+$/.test(name) && readText(join(dir, "type")) === "0") continue;
    const path = join(devRoot, name);
    const usb = usbDeviceDir(deviceLink);
    out.push({
      path,
      byId: links.byId.get(path) ?? [],
      byPath: links.byPath.get(path) ?? [],
      vendorId: usb ? readText(join(usb, "idVendor"))?.toLowerCase() : undefined,
      productId: usb ? readText(join(usb, "idProduct"))?.toLowerCase() : undefined,
      manufacturer: usb ? readText(join(usb, "manufacturer")) : undefined,
      product: usb ? readText(join(usb, "product")) : undefined,
      serialNumber: usb ? readText(join(usb, "serial")) : undefined,
      driver,
    });
  }
  return out;
}

function usbDeviceDir(deviceLink: string): string | undefined {
  let dir: string;
  try {
    dir = realpathSync(deviceLink);
  } catch {
    return undefined;
  }
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "idVendor"))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

function linkName(link: string): string | undefined {
  try {
    return basename(readlinkSync(link));
  } catch {
    return undefined;
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** `pnpm gateway ports`: a table for people, `--json` for scripts. */
export function formatPortList(list: PortList): string {
  const lines: string[] = [];
  if (list.ports.length === 0) {
    lines.push(
      "No serial ports found. Plug the radio in, then run this again; `dmesg | tail` shows whether the kernel saw it.",
    );
  }
  for (const p of list.ports) {
    const usb = p.vendorId ? `USB ${p.vendorId}:${p.productId ?? "????"}` : "not USB";
    const what = [p.manufacturer, p.product].filter(Boolean).join(" ");
    const serial = p.serialNumber ? `  serial ${p.serialNumber}` : "";
    lines.push(`${p.path}  ${usb}${what ? `  ${what}` : ""}${serial}${p.driver ? `  (${p.driver})` : ""}`);
    for (const l of p.byId) lines.push(`    by-id:   ${l}`);
    for (const l of p.byPath) lines.push(`    by-path: ${l}`);
  }
  if (list.ports.some((p) => p.byId.length > 0)) {
    lines.push(
      "",
      "Use the by-id name: it stays the same whatever the plug order, e.g.",
      `  DATALAB_SERIAL_PORTS=${list.ports.find((p) => p.byId.length > 0)!.byId[0]}:mysensors`,
    );
  }
  lines.push(`(listed with ${list.method}${list.note ? `; ${list.note}` : ""})`);
  return `${lines.join("\n")}\n`;
}

export async function portsCommand(json: boolean): Promise<number> {
  const list = await listSerialPorts();
  process.stdout.write(json ? `${JSON.stringify(list, null, 2)}\n` : formatPortList(list));
  return 0;
}
