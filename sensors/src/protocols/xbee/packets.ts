import { EncodeError } from "../common/errors";
import { frameError, frameOk, type FrameResult } from "../common/result";
import { XBeeFrameType } from "./constants";
import { XBeeFrame } from "./frame";

/** Fields shared by the receive frames: who sent it. */
export interface XBeeSource {
  /** 64-bit source address as 16 lower-case hex digits, e.g. "0013a20040522baa". */
  readonly source64: string;
  /** 16-bit network address (0xFFFE when unknown). */
  readonly source16: number;
  /** Receive options bit field (0x01 acknowledged, 0x02 broadcast, 0x40/0x80 ...). */
  readonly options: number;
}

/** 0x90 Zigbee Receive Packet (AO=0). */
export interface XBeeReceivePacket extends XBeeSource {
  readonly data: Buffer;
}

/** 0x91 Explicit Rx Indicator (AO=1): the same payload with Zigbee endpoint/cluster/profile. */
export interface XBeeExplicitReceivePacket extends XBeeReceivePacket {
  readonly sourceEndpoint: number;
  readonly destinationEndpoint: number;
  readonly clusterId: number;
  readonly profileId: number;
}

/** 0x92 I/O Data Sample Rx Indicator. */
export interface XBeeIoSample extends XBeeSource {
  /** Enabled digital lines by name ("DIO0".."DIO12"), 0 or 1. */
  readonly digital: Readonly<Record<string, 0 | 1>>;
  /** Enabled analog inputs by name ("AD0".."AD3", "SUPPLY" for mask bit 7), raw counts. */
  readonly analog: Readonly<Record<string, number>>;
}

/** Analog channel mask bit 7 is the supply voltage, not an input pin. */
const SUPPLY_BIT = 7;
export const XBEE_SUPPLY_PIN = "SUPPLY";

export function analogPinName(bit: number): string {
  return bit === SUPPLY_BIT ? XBEE_SUPPLY_PIN : `AD${bit}`;
}

// Pin names built once: a sample is decoded per frame, and string building showed in profiles.
const DIGITAL_PIN_NAMES = Array.from({ length: 16 }, (_, bit) => `DIO${bit}`);
const ANALOG_PIN_NAMES = Array.from({ length: 8 }, (_, bit) => analogPinName(bit));

// Layouts: user guide 90000976, "Zigbee Receive Packet - 0x90", "Zigbee Explicit Rx
// Indicator - 0x91", "Zigbee IO Data Sample Rx Indicator - 0x92". Offsets below are into
// the frame-specific data (after the API identifier).

export function parseReceivePacket(frame: XBeeFrame): FrameResult<XBeeReceivePacket> {
  const d = frame.data;
  if (d.length < 11) return frameError("truncated_frame", `0x90 needs 11 header bytes, has ${d.length}`);
  return frameOk({
    source64: d.toString("hex", 0, 8),
    source16: d.readUInt16BE(8),
    options: d[10]!,
    data: d.subarray(11),
  });
}

export function parseExplicitReceivePacket(frame: XBeeFrame): FrameResult<XBeeExplicitReceivePacket> {
  const d = frame.data;
  if (d.length < 17) return frameError("truncated_frame", `0x91 needs 17 header bytes, has ${d.length}`);
  return frameOk({
    source64: d.toString("hex", 0, 8),
    source16: d.readUInt16BE(8),
    options: d[16]!,
    sourceEndpoint: d[10]!,
    destinationEndpoint: d[11]!,
    clusterId: d.readUInt16BE(12),
    profileId: d.readUInt16BE(14),
    data: d.subarray(17),
  });
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n; v; v &= v - 1) c++;
  return c;
}

export function parseIoSample(frame: XBeeFrame): FrameResult<XBeeIoSample> {
  const d = frame.data;
  if (d.length < 15) return frameError("truncated_frame", `0x92 needs 15 header bytes, has ${d.length}`);
  const samples = d[11]!;
  // "Number of samples: always set to 1" (user guide); anything else is a layout we do not know.
  if (samples !== 1) return frameError("bad_field", `0x92 number of samples is ${samples}, expected 1`);
  const digitalMask = d.readUInt16BE(12);
  const analogMask = d[14]!;
  // Digital states take 2 bytes only when some line is enabled; each analog input takes 2.
  const expected = 15 + (digitalMask ? 2 : 0) + 2 * popcount(analogMask);
  if (d.length < expected)
    return frameError("truncated_frame", `0x92 masks need ${expected} bytes, frame has ${d.length}`);
  if (d.length > expected) return frameError("bad_length", `0x92 masks need ${expected} bytes, frame has ${d.length}`);

  let at = 15;
  const digital: Record<string, 0 | 1> = {};
  if (digitalMask) {
    const states = d.readUInt16BE(at);
    at += 2;
    for (let bit = 0; bit < 16; bit++) {
      if (digitalMask & (1 << bit)) digital[DIGITAL_PIN_NAMES[bit]!] = (states >> bit) & 1 ? 1 : 0;
    }
  }
  const analog: Record<string, number> = {};
  for (let bit = 0; bit < 8; bit++) {
    if (analogMask & (1 << bit)) {
      analog[ANALOG_PIN_NAMES[bit]!] = d.readUInt16BE(at);
      at += 2;
    }
  }
  return frameOk({ source64: d.toString("hex", 0, 8), source16: d.readUInt16BE(8), options: d[10]!, digital, analog });
}

export interface XBeeSourceInit {
  readonly source64: string;
  /** Default 0xFFFE ("unknown"). */
  readonly source16?: number;
  /** Default 0x01 (packet acknowledged). */
  readonly options?: number;
}

export interface XBeeReceivePacketInit extends XBeeSourceInit {
  readonly data: Uint8Array | string;
}

export interface XBeeIoSampleInit extends XBeeSourceInit {
  readonly digital?: Readonly<Record<string, 0 | 1 | boolean>>;
  readonly analog?: Readonly<Record<string, number>>;
}

function writeSource(buf: Buffer, init: XBeeSourceInit): void {
  if (!/^[0-9a-fA-F]{16}$/.test(init.source64)) {
    throw new EncodeError(`source64 must be 16 hex digits, got ${JSON.stringify(init.source64)}`);
  }
  buf.write(init.source64, 0, "hex");
  const source16 = init.source16 ?? 0xfffe;
  const options = init.options ?? 0x01;
  if (!Number.isInteger(source16) || source16 < 0 || source16 > 0xffff)
    throw new EncodeError(`source16 out of range: ${source16}`);
  if (!Number.isInteger(options) || options < 0 || options > 0xff)
    throw new EncodeError(`options out of range: ${options}`);
  buf.writeUInt16BE(source16, 8);
  buf[10] = options;
}

export function buildReceivePacket(init: XBeeReceivePacketInit): XBeeFrame {
  const payload = typeof init.data === "string" ? Buffer.from(init.data, "utf8") : Buffer.from(init.data);
  const data = Buffer.alloc(11 + payload.length);
  writeSource(data, init);
  payload.copy(data, 11);
  return new XBeeFrame(XBeeFrameType.RECEIVE_PACKET, data);
}

export function buildIoSample(init: XBeeIoSampleInit): XBeeFrame {
  let digitalMask = 0;
  let digitalStates = 0;
  for (const [name, value] of Object.entries(init.digital ?? {})) {
    const m = /^DIO(\d{1,2})$/.exec(name);
    const bit = m ? Number(m[1]) : NaN;
    if (!(bit >= 0 && bit <= 15)) throw new EncodeError(`digital line ${JSON.stringify(name)} is not DIO0..DIO15`);
    digitalMask |= 1 << bit;
    if (value === 1 || value === true) digitalStates |= 1 << bit;
  }
  let analogMask = 0;
  const analogByBit = new Map<number, number>();
  for (const [name, value] of Object.entries(init.analog ?? {})) {
    const m = /^AD([0-6])$/.exec(name);
    const bit = name === XBEE_SUPPLY_PIN ? SUPPLY_BIT : m ? Number(m[1]) : NaN;
    if (Number.isNaN(bit))
      throw new EncodeError(`analog input ${JSON.stringify(name)} is not AD0..AD6 or ${XBEE_SUPPLY_PIN}`);
    if (!Number.isInteger(value) || value < 0 || value > 0xffff)
      throw new EncodeError(`analog ${name} value ${value} is not 0..65535`);
    analogMask |= 1 << bit;
    analogByBit.set(bit, value);
  }
  const data = Buffer.alloc(15 + (digitalMask ? 2 : 0) + 2 * analogByBit.size);
  writeSource(data, init);
  data[11] = 1;
  data.writeUInt16BE(digitalMask, 12);
  data[14] = analogMask;
  let at = 15;
  if (digitalMask) {
    data.writeUInt16BE(digitalStates, at);
    at += 2;
  }
  for (let bit = 0; bit < 8; bit++) {
    const value = analogByBit.get(bit);
    if (value === undefined) continue;
    data.writeUInt16BE(value, at);
    at += 2;
  }
  return new XBeeFrame(XBeeFrameType.IO_DATA_SAMPLE, data);
}
