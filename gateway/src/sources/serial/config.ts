import { z } from "zod";
import { type ConfigOf, field } from "@datalab/shared";
import {
  CodecConfigError,
  createParser,
  isProtocolName,
  PROTOCOL_NAMES,
  type ProtocolName,
  type XBeeCodecOptions,
  type XBeePinMap,
} from "@datalab/sensors";

/**
 * Configuration of the serial radios: ports (`DATALAB_SERIAL_PORTS` or `serialPorts` in the
 * config file), XBee pin scaling (`xbeePins`) and the MySensors unit system.
 */

export interface SerialPortSpec {
  /** Prefer /dev/serial/by-id/...: ttyUSB0 and ttyUSB1 swap places when plugged in another order. */
  readonly path: string;
  readonly baudRate: number;
  readonly protocol: ProtocolName;
}

/**
 * The usual speed of each kind of radio: MySensors serial gateways are built with
 * MY_BAUD_RATE 115200; XBee modules leave the factory at BD=3 (9600 baud).
 */
export const DEFAULT_BAUD_RATES: Readonly<Record<ProtocolName, number>> = {
  jsonl: 115_200,
  mysensors: 115_200,
  xbee: 9_600,
  xbee2: 9_600,
  rtl433: 115_200,
};

const MIN_BAUD = 50;
const MAX_BAUD = 4_000_000;

/**
 * `path[@baud]:protocol`, e.g. `/dev/ttyUSB0@115200:mysensors`. The protocol is after the last
 * colon and the speed after the last `@`, because by-path names contain colons
 * (`pci-0000:00:14.0-usb-0:1:1.0-port0`). Throws an Error saying what is wrong.
 */
export function parseSerialPortSpec(text: string): SerialPortSpec {
  const spec = text.trim();
  const colon = spec.lastIndexOf(":");
  if (colon < 0) throw new Error(`"${spec}": expected path[@baud]:protocol, e.g. /dev/ttyUSB0@115200:mysensors`);
  const protocol = spec.slice(colon + 1).trim();
  let path = spec.slice(0, colon).trim();
  let baud: number | undefined;
  const at = /@(\d*)$/.exec(path);
  if (at) {
    if (at[1] === "") throw new Error(`"${spec}": "@" must be followed by a baud rate`);
    baud = Number(at[1]);
    path = path.slice(0, at.index);
  }
  return checkSpec({ path, protocol, baudRate: baud }, `"${spec}"`);
}

function checkSpec(
  s: { path: string; protocol: string; baudRate?: number | undefined },
  where: string,
): SerialPortSpec {
  if (!isProtocolName(s.protocol))
    throw new Error(`${where}: unknown protocol "${s.protocol}"; expected one of ${PROTOCOL_NAMES.join(", ")}`);
  if (!s.path.startsWith("/"))
    throw new Error(`${where}: the path must be absolute, e.g. /dev/serial/by-id/... or /dev/ttyUSB0`);
  const baudRate = s.baudRate ?? DEFAULT_BAUD_RATES[s.protocol];
  if (!Number.isInteger(baudRate) || baudRate < MIN_BAUD || baudRate > MAX_BAUD) {
    throw new Error(`${where}: baud rate ${s.baudRate} is not an integer from ${MIN_BAUD} to ${MAX_BAUD}`);
  }
  return { path: s.path, baudRate, protocol: s.protocol };
}

const portObject = z.object(
  {
    path: z.string(),
    protocol: z.string(),
    baudRate: z.number().optional(),
  },
  { error: "expected {path, protocol, baudRate?}" },
);

/**
 * The environment gives a comma-separated list of specs; the config file may give the same
 * string, an array of spec strings, or an array of `{path, protocol, baudRate?}`.
 */
export const serialPortsSchema = z
  .union([z.string(), z.array(z.union([z.string(), portObject]))], {
    error: "expected path[@baud]:protocol,... or a list",
  })
  .default([])
  .transform((value, ctx) => {
    const items = typeof value === "string" ? value.split(",").filter((s) => s.trim() !== "") : value;
    const out: SerialPortSpec[] = [];
    for (const [i, item] of items.entries()) {
      try {
        out.push(
          typeof item === "string" ? parseSerialPortSpec(item) : checkSpec(item, `port ${i + 1} (${item.path})`),
        );
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }
    const seen = new Set<string>();
    for (const p of out) {
      if (seen.has(p.path))
        ctx.addIssue({ code: "custom", message: `${p.path} is listed twice: one port, one reader` });
      seen.add(p.path);
    }
    return out;
  });

const PIN_NAME = /^(AD[0-6]|DIO\d{1,2}|SUPPLY)$/;
const NODE_ADDRESS = /^[0-9a-fA-F]{16}$/;

/**
 * `xbeePins`: how XBee I/O samples become readings, value = raw * scale + offset. Keys that
 * are pin names (AD0..AD6, DIO0..DIO15, SUPPLY) apply to every node; a key that is a node's
 * 64-bit address (16 hex digits) holds pin mappings for that node only, overriding pin by pin.
 * `false` drops a pin. Example:
 * `{"AD0": {"metric": "temperature", "unit": "Cel", "scale": 0.1173, "offset": -50},
 *   "0013a20040522baa": {"AD1": {"metric": "humidity", "unit": "%RH", "scale": 0.1}}}`.
 * In the environment (`DATALAB_XBEE_PINS`) the same object as JSON text.
 */
export const xbeePinsSchema = z
  .union([z.string(), z.record(z.string(), z.unknown())], { error: "expected a JSON object of pin mappings" })
  .optional()
  .transform((value, ctx): XBeeCodecOptions => {
    if (value === undefined || value === "") return {};
    let obj: unknown = value;
    if (typeof value === "string") {
      try {
        obj = JSON.parse(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `not JSON: ${(err as Error).message}` });
        return z.NEVER;
      }
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      ctx.addIssue({ code: "custom", message: "expected a JSON object of pin mappings" });
      return z.NEVER;
    }
    const pins: Record<string, unknown> = {};
    const pinsByNode: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(obj)) {
      if (PIN_NAME.test(key)) pins[key] = v;
      else if (NODE_ADDRESS.test(key)) pinsByNode[key] = v;
      else
        ctx.addIssue({
          code: "custom",
          message:
            `"${key}" is neither a pin name (AD0..AD6, DIO0..DIO15, SUPPLY) ` +
            "nor a 64-bit node address (16 hex digits)",
        });
    }
    const options: XBeeCodecOptions = {
      pins: pins as XBeePinMap,
      pinsByNode: pinsByNode as Record<string, XBeePinMap>,
    };
    const shape = pinMappingsShape.safeParse(options);
    if (!shape.success) {
      for (const issue of shape.error.issues)
        ctx.addIssue({ code: "custom", message: `${issue.path.join(".")}: ${issue.message}` });
      return z.NEVER;
    }
    try {
      // The codec checks metric names and numbers the way it will use them.
      createParser("xbee", options);
    } catch (err) {
      if (!(err instanceof CodecConfigError)) throw err;
      ctx.addIssue({ code: "custom", message: err.message });
      return z.NEVER;
    }
    return options;
  });

const pinMapping = z.union([
  z.literal(false),
  z
    .object(
      { metric: z.string(), unit: z.string().optional(), scale: z.number().optional(), offset: z.number().optional() },
      { error: "expected false or {metric, unit?, scale?, offset?}" },
    )
    .strict(),
]);
const pinMappingsShape = z.object({
  pins: z.record(z.string(), pinMapping),
  pinsByNode: z.record(z.string(), z.record(z.string(), pinMapping, { error: "expected an object of pin mappings" })),
});

export const serialFields = {
  serialPorts: field(
    "DATALAB_SERIAL_PORTS",
    serialPortsSchema,
    "serial radios, comma-separated path[@baud]:protocol (jsonl, mysensors, xbee = API mode 1, " +
      "xbee2 = API mode 2, rtl433), e.g. /dev/serial/by-id/usb-FTDI_..-port0@115200:mysensors; " +
      "default baud 115200, xbee 9600",
  ),
  xbeePins: field(
    "DATALAB_XBEE_PINS",
    xbeePinsSchema,
    'XBee I/O pin scaling as JSON: {"AD0": {"metric": "temperature", "unit": "Cel", "scale": 0.1, ' +
      '"offset": -50}, "<64-bit address>": {...per node}}',
  ),
  mysensorsUnitSystem: field(
    "DATALAB_MYSENSORS_UNITS",
    z.enum(["M", "I"], { error: "expected M (metric) or I (imperial)" }).default("M"),
    "what the MySensors controller answers to I_CONFIG: M metric, I imperial",
  ),
} as const;

/** What the serial sources read from the gateway's config. */
export type SerialConfig = ConfigOf<typeof serialFields> & {
  /** Where the MySensors controller keeps its node ids (mysensors.db). */
  readonly dataDir: string;
};
