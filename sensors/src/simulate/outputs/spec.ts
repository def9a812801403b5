import { isProtocolName, PROTOCOL_NAMES, type ProtocolName } from "../../protocols/index";

/** Where a run's messages go, as written on the command line (`--out`). */
export type OutputSpec =
  | { kind: "mqtt" }
  | { kind: "serial"; path: string; baudRate: number; protocol: ProtocolName }
  | { kind: "stdout"; protocol: ProtocolName };

export const OUTPUT_SPEC_HELP = `mqtt | serial:PATH[@BAUD]:PROTOCOL | stdout[:PROTOCOL]
                       PROTOCOL: ${PROTOCOL_NAMES.join(", ")} (stdout default jsonl, BAUD 115200)`;
const DEFAULT_BAUD = 115_200;

/**
 * `mqtt`, `stdout[:PROTOCOL]` (default jsonl) or `serial:PATH[@BAUD]:PROTOCOL`. The protocol is
 * taken from the right, so paths with colons (`/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0`)
 * work. Returns a problem text instead of throwing, for the caller's list of problems.
 */
export function parseOutputSpec(text: string): OutputSpec | { problem: string } {
  if (text === "mqtt") return { kind: "mqtt" };
  if (text === "stdout") return { kind: "stdout", protocol: "jsonl" };
  if (text.startsWith("stdout:")) {
    const protocol = text.slice("stdout:".length);
    return isProtocolName(protocol) ? { kind: "stdout", protocol } : { problem: unknownProtocol(protocol) };
  }
  if (text.startsWith("serial:")) {
    const rest = text.slice("serial:".length);
    const cut = rest.lastIndexOf(":");
    if (cut <= 0)
      return { problem: `"${text}": expected serial:PATH[@BAUD]:PROTOCOL, e.g. serial:/dev/ttyUSB0@115200:mysensors` };
    const protocol = rest.slice(cut + 1);
    if (!isProtocolName(protocol)) return { problem: unknownProtocol(protocol) };
    let path = rest.slice(0, cut);
    let baudRate = DEFAULT_BAUD;
    const baud = /@(\d+)$/.exec(path);
    if (baud) {
      baudRate = Number(baud[1]);
      path = path.slice(0, baud.index);
      if (baudRate < 50 || baudRate > 4_000_000) return { problem: `baud rate ${baudRate} is not 50..4000000` };
    }
    if (path === "") return { problem: `"${text}": the serial port path is empty` };
    return { kind: "serial", path, baudRate, protocol };
  }
  return { problem: `"${text}": expected ${OUTPUT_SPEC_HELP}` };
}

function unknownProtocol(p: string): string {
  return `unknown protocol "${p}": expected one of ${PROTOCOL_NAMES.join(", ")}`;
}

export function describeSpec(s: OutputSpec): string {
  switch (s.kind) {
    case "mqtt":
      return "mqtt";
    case "stdout":
      return `stdout:${s.protocol}`;
    case "serial":
      return `serial:${s.path}@${s.baudRate}:${s.protocol}`;
  }
}
