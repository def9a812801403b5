import type { DecodedReading } from "@datalab/shared";
import { decodeDataLabJson } from "../jsonl/decode";
import { cleanFloat, toEpochMillis } from "../common/numbers";
import { decodeError, ignoredResult, readingsResult, type DecodeResult } from "../common/result";
import type { FieldNote } from "../common/units";
import { XBEE_CONTROL_FRAME_TYPES, XBEE_SENSOR_ID_PREFIX, XBEE_SUPPLY_MV_PER_COUNT, XBeeFrameType } from "./constants";
import type { XBeeFrame } from "./frame";
import {
  parseExplicitReceivePacket,
  parseIoSample,
  parseReceivePacket,
  XBEE_SUPPLY_PIN,
  type XBeeIoSample,
  type XBeeReceivePacket,
} from "./packets";
import { parseTextPayload } from "./payload-text";

/** How one I/O line becomes a reading: value = raw * scale + offset. */
export interface XBeePinMapping {
  readonly metric: string;
  readonly unit?: string;
  readonly scale?: number;
  readonly offset?: number;
}

/**
 * Per-pin mappings keyed by pin name ("AD0".."AD3", "DIO0".."DIO12", "SUPPLY"). `false`
 * drops the pin (e.g. a DIO configured as an output, which still appears in samples).
 */
export type XBeePinMap = Readonly<Record<string, XBeePinMapping | false>>;

export interface XBeeDecodeOptions {
  /** Pin mappings for every node. */
  readonly pins?: XBeePinMap;
  /** Per-node pin mappings by 64-bit address (lower-case hex); they override `pins` pin by pin. */
  readonly pinsByNode?: Readonly<Record<string, XBeePinMap>>;
}

/** `xbee-<64-bit address>`, e.g. `xbee-0013a20040522baa`: the address is factory-set and unique. */
export function xbeeSensorId(source64: string): string {
  return `${XBEE_SENSOR_ID_PREFIX}-${source64.toLowerCase()}`;
}

/**
 * Default mappings when a pin is not configured: analog inputs as raw ADC counts (`adc1`,
 * no unit: the meaning depends on the circuit), digital lines as 0/1 (`dio3`), and the
 * supply voltage in volts, since its scaling is fixed by Digi.
 */
const DEFAULT_MAPPINGS = new Map<string, XBeePinMapping>();

function defaultMapping(pin: string): XBeePinMapping {
  let mapping = DEFAULT_MAPPINGS.get(pin);
  if (mapping === undefined) {
    if (pin === XBEE_SUPPLY_PIN)
      mapping = { metric: "supply_voltage", unit: "V", scale: XBEE_SUPPLY_MV_PER_COUNT / 1000 };
    else if (pin.startsWith("AD")) mapping = { metric: `adc${pin.slice(2)}` };
    else mapping = { metric: `dio${pin.slice(3)}` };
    DEFAULT_MAPPINGS.set(pin, mapping); // at most 24 pin names
  }
  return mapping;
}

/**
 * XBee frame -> readings.
 * - 0x90 Receive Packet and 0x91 Explicit Rx: the payload as text (see payload-text.ts).
 * - 0x92 I/O Data Sample: one reading per enabled line, mapped by `pins`.
 * - Status/response frames (0x88, 0x8A, 0x8B, 0x95, 0x97, 0xA1...): `ignored`, category `control`.
 * - Any other type (Series 1 0x80-0x83, sensor read 0x94...): `unknown_message_type`.
 */
export function decodeXBee(frame: XBeeFrame, options: XBeeDecodeOptions = {}): DecodeResult {
  switch (frame.type) {
    case XBeeFrameType.RECEIVE_PACKET: {
      const packet = parseReceivePacket(frame);
      return packet.ok ? decodePayload(packet.frame) : decodeError(packet.reason, packet.message);
    }
    case XBeeFrameType.EXPLICIT_RX_INDICATOR: {
      const packet = parseExplicitReceivePacket(frame);
      return packet.ok ? decodePayload(packet.frame) : decodeError(packet.reason, packet.message);
    }
    case XBeeFrameType.IO_DATA_SAMPLE: {
      const sample = parseIoSample(frame);
      return sample.ok ? decodeIoSample(sample.frame, options) : decodeError(sample.reason, sample.message);
    }
    default: {
      const control = XBEE_CONTROL_FRAME_TYPES.get(frame.type);
      if (control !== undefined) return ignoredResult("control", `0x${hex(frame.type)} ${control}`);
      return decodeError("unknown_message_type", `frame type 0x${hex(frame.type)} is not decoded`);
    }
  }
}

function decodePayload(packet: XBeeReceivePacket): DecodeResult {
  const sensorId = xbeeSensorId(packet.source64);
  const payload = parseTextPayload(packet.data);
  if (!payload.ok) return decodeError("bad_payload", payload.message);
  if (payload.form === "json") return decodeDataLabJson(payload.object, { sensorId });

  let ts: number | undefined;
  if (payload.ts !== undefined) {
    const parsed = toEpochMillis(payload.ts);
    if (!parsed.ok) return decodeError("bad_payload", `ts: ${parsed.message}`);
    ts = parsed.ts;
  }
  if (payload.pairs.length === 0) return ignoredResult("no_metrics", `payload from ${sensorId} has no numeric values`);
  // `name=value` pairs state no unit: configured per metric, or unknown.
  const notes: FieldNote[] = [];
  const readings = payload.pairs.map(([metric, value]) => {
    const reading: DecodedReading = { sensorId, metric, value };
    notes.push({ field: metric, outcome: "unit_unknown" });
    if (ts !== undefined) reading.ts = ts;
    return reading;
  });
  return readingsResult(readings, notes);
}

function decodeIoSample(sample: XBeeIoSample, options: XBeeDecodeOptions): DecodeResult {
  const sensorId = xbeeSensorId(sample.source64);
  const nodePins = options.pinsByNode?.[sample.source64];
  const readings: DecodedReading[] = [];
  let notes: FieldNote[] | undefined;
  for (const lines of [sample.analog, sample.digital]) {
    for (const pin in lines) {
      const raw = lines[pin]!;
      const configured = nodePins?.[pin] ?? options.pins?.[pin];
      if (configured === false) continue;
      const mapping = configured ?? defaultMapping(pin);
      const value =
        mapping.scale === undefined && mapping.offset === undefined
          ? raw
          : cleanFloat(raw * (mapping.scale ?? 1) + (mapping.offset ?? 0));
      const reading: DecodedReading = { sensorId, metric: mapping.metric, value };
      if (mapping.unit !== undefined) reading.unit = mapping.unit;
      // Digital lines are 0/1 states; an analog line's unit is the pin map's, or unknown.
      else if (lines === sample.analog) (notes ??= []).push({ field: mapping.metric, outcome: "unit_unknown" });
      readings.push(reading);
    }
  }
  if (readings.length === 0)
    return ignoredResult("no_metrics", `I/O sample from ${sensorId} has no enabled (or mapped) lines`);
  return readingsResult(readings, notes);
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}
