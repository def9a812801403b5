import { CodecConfigError } from "./common/errors";
import { metricNameProblem } from "./common/names";
import type { ChunkConsumer, IncrementalParser } from "./common/parser";
import { toCodecOutput, type CodecErrorReason, type CodecOutput, type DecodeResult } from "./common/result";
import { ParserStream } from "./common/stream";
import { canonicalizeUnits, NO_CONFIGURED_UNITS, type UnitConfig } from "./common/units";
import { decodeDataLabJson } from "./jsonl/decode";
import { DataLabJson } from "./jsonl/frame";
import { JsonlParser, type JsonlParserOptions } from "./jsonl/parser";
import { decodeMySensors, type MySensorsDecodeOptions } from "./mysensors/decode";
import { MySensorsMessage } from "./mysensors/frame";
import { MySensorsParser, type MySensorsParserOptions } from "./mysensors/parser";
import { decodeRtl433, type Rtl433DecodeOptions } from "./rtl433/decode";
import { Rtl433Event } from "./rtl433/frame";
import { Rtl433Parser, type Rtl433ParserOptions } from "./rtl433/parser";
import { decodeXBee, type XBeeDecodeOptions, type XBeePinMap } from "./xbee/decode";
import type { XBeeFrame } from "./xbee/frame";
import { XBeeParser, type XBeeParserOptions } from "./xbee/parser";

/** `xbee` is API mode 1 (AP=1), `xbee2` API mode 2 (AP=2, escaped). */
export const PROTOCOL_NAMES = ["jsonl", "mysensors", "xbee", "xbee2", "rtl433"] as const;
export type ProtocolName = (typeof PROTOCOL_NAMES)[number];

export function isProtocolName(value: unknown): value is ProtocolName {
  return typeof value === "string" && (PROTOCOL_NAMES as readonly string[]).includes(value);
}

export type XBeeCodecOptions = Omit<XBeeParserOptions, "mode"> & XBeeDecodeOptions;

/** What every protocol's options may carry: the units the operator configured per metric. */
export interface UnitOptions {
  readonly units?: UnitConfig;
}

/** Options per protocol: the parser's (buffer bounds) and the decoder's, in one object. */
export interface ProtocolOptionsMap {
  jsonl: JsonlParserOptions & UnitOptions;
  mysensors: MySensorsParserOptions & MySensorsDecodeOptions & UnitOptions;
  xbee: XBeeCodecOptions & UnitOptions;
  xbee2: XBeeCodecOptions & UnitOptions;
  rtl433: Rtl433ParserOptions & Rtl433DecodeOptions;
}

export interface ProtocolFrameMap {
  jsonl: DataLabJson;
  mysensors: MySensorsMessage;
  xbee: XBeeFrame;
  xbee2: XBeeFrame;
  rtl433: Rtl433Event;
}

/**
 * A parser and its decoder, so a serial/stdin source can be written once for every protocol:
 * `for (const out of codec.push(chunk)) switch (out.kind) { ... }`.
 * Use either `push`/`flush` here, `parser` directly, or `stream()`: they share one parser.
 */
export interface ProtocolCodec<F = unknown> extends ChunkConsumer<CodecOutput<F>> {
  readonly protocol: ProtocolName;
  readonly parser: IncrementalParser<F>;
  /** Pure: the same frame always gives the same result. */
  decode(frame: F): DecodeResult;
  /** Parses a chunk and decodes every frame in it. Never throws on bad input. */
  push(chunk: Uint8Array): CodecOutput<F>[];
  flush(): CodecOutput<F>[];
  /** A Transform: bytes in, `CodecOutput` objects out (objectMode). */
  stream(): ParserStream<CodecOutput<F>>;
}

/**
 * Every decoder's last step: configured units for readings whose source stated none, then
 * each known unit to its quantity's canonical unit (common/units.ts).
 */
function withUnits<F>(
  decode: (frame: F) => DecodeResult,
  units: UnitConfig = NO_CONFIGURED_UNITS,
): (frame: F) => DecodeResult {
  return (frame) => {
    const r = decode(frame);
    if (r.kind !== "readings") return r;
    const notes = canonicalizeUnits(r.readings, r.notes, units);
    return notes === r.notes ? r : { kind: "readings", readings: r.readings, notes };
  };
}

function makeCodec<F>(
  protocol: ProtocolName,
  parser: IncrementalParser<F>,
  rawDecode: (frame: F) => DecodeResult,
  units?: UnitConfig,
): ProtocolCodec<F> {
  const decode = withUnits(rawDecode, units);
  const codec: ProtocolCodec<F> = {
    protocol,
    parser,
    decode,
    push: (chunk) => parser.push(chunk).map((r) => toCodecOutput(r, decode)),
    flush: () => parser.flush().map((r) => toCodecOutput(r, decode)),
    stream: () => new ParserStream(codec),
  };
  return codec;
}

/**
 * The registry: one incremental parser plus its decoder for a protocol named in config.
 * Throws CodecConfigError (listing every problem) for an unknown name or bad options.
 */
export function createParser<P extends ProtocolName>(
  protocol: P,
  options?: ProtocolOptionsMap[P],
): ProtocolCodec<ProtocolFrameMap[P]>;
export function createParser(protocol: ProtocolName, options: object = {}): ProtocolCodec<unknown> {
  switch (protocol) {
    case "jsonl": {
      const o = options as ProtocolOptionsMap["jsonl"];
      return makeCodec<DataLabJson>(
        protocol,
        new JsonlParser(o),
        (f) => decodeDataLabJson(f.value),
        o.units,
      ) as ProtocolCodec<unknown>;
    }
    case "mysensors": {
      const o = options as ProtocolOptionsMap["mysensors"];
      checkMySensorsOptions(o);
      return makeCodec<MySensorsMessage>(
        protocol,
        new MySensorsParser(o),
        (f) => decodeMySensors(f, o),
        o.units,
      ) as ProtocolCodec<unknown>;
    }
    case "xbee":
    case "xbee2": {
      const o = normalizeXBeeOptions(options as XBeeCodecOptions);
      const parser = new XBeeParser({ ...o, mode: protocol === "xbee2" ? 2 : 1 });
      return makeCodec<XBeeFrame>(
        protocol,
        parser,
        (f) => decodeXBee(f, o),
        (options as UnitOptions).units,
      ) as ProtocolCodec<unknown>;
    }
    case "rtl433": {
      const o = options as ProtocolOptionsMap["rtl433"];
      return makeCodec<Rtl433Event>(
        protocol,
        new Rtl433Parser(o),
        (f) => decodeRtl433(f, o),
        o.units,
      ) as ProtocolCodec<unknown>;
    }
    default:
      throw new CodecConfigError(
        `unknown protocol ${JSON.stringify(protocol)}; expected one of ${PROTOCOL_NAMES.join(", ")}`,
      );
  }
}

function checkMySensorsOptions(o: MySensorsDecodeOptions): void {
  const problems: string[] = [];
  if (o.unitSystem !== undefined && o.unitSystem !== "M" && o.unitSystem !== "I")
    problems.push(`unitSystem must be "M" or "I"`);
  if (o.pressureUnit !== undefined && o.pressureUnit !== "hPa" && o.pressureUnit !== "Pa")
    problems.push(`pressureUnit must be "hPa" or "Pa"`);
  if (problems.length) throw new CodecConfigError(`mysensors options: ${problems.join("; ")}`);
}

function pinMapProblems(where: string, pins: XBeePinMap, problems: string[]): void {
  for (const [pin, mapping] of Object.entries(pins)) {
    if (!/^(AD[0-6]|DIO\d{1,2}|SUPPLY)$/.test(pin))
      problems.push(`${where}.${pin}: not a pin name (AD0..AD6, DIO0..DIO15, SUPPLY)`);
    if (mapping === false) continue;
    const nameProblem = metricNameProblem(mapping.metric ?? "");
    if (nameProblem) problems.push(`${where}.${pin}.metric: ${nameProblem}`);
    for (const key of ["scale", "offset"] as const) {
      const v = mapping[key];
      if (v !== undefined && !Number.isFinite(v)) problems.push(`${where}.${pin}.${key}: not a finite number`);
    }
  }
}

/** Validates pin maps and lower-cases node addresses (frames carry them lower-case). */
function normalizeXBeeOptions(o: XBeeCodecOptions): XBeeCodecOptions {
  const problems: string[] = [];
  if (o.pins) pinMapProblems("pins", o.pins, problems);
  const pinsByNode: Record<string, XBeePinMap> = {};
  for (const [address, pins] of Object.entries(o.pinsByNode ?? {})) {
    if (!/^[0-9a-fA-F]{16}$/.test(address))
      problems.push(`pinsByNode.${address}: not a 64-bit address (16 hex digits)`);
    pinMapProblems(`pinsByNode.${address}`, pins, problems);
    pinsByNode[address.toLowerCase()] = pins;
  }
  if (problems.length) throw new CodecConfigError(`xbee options:\n  - ${problems.join("\n  - ")}`);
  return o.pinsByNode ? { ...o, pinsByNode } : o;
}

/** Formats whose one message is one frame, so an MQTT payload can carry one (`topic:format`). */
export const MESSAGE_FORMATS = ["jsonl", "rtl433", "mysensors"] as const;
export type MessageFormat = (typeof MESSAGE_FORMATS)[number];

export function isMessageFormat(value: unknown): value is MessageFormat {
  return typeof value === "string" && (MESSAGE_FORMATS as readonly string[]).includes(value);
}

/** What a message decoder returns: the decode result, or the reason the bytes made no frame. */
export type MessageResult =
  | DecodeResult
  | { readonly kind: "error"; readonly stage: "parse"; readonly reason: CodecErrorReason; readonly message: string };

export interface MessageContext {
  /** DataLab JSON only: the sensor id implied by the carrier (the last MQTT topic level). */
  readonly sensorIdHint?: string | undefined;
}

/**
 * One whole message (an MQTT payload) through the same frame parsing and decoder as a line
 * of the same format from a serial port or stdin, so the same bytes give the same readings.
 */
export function createMessageDecoder<P extends MessageFormat>(
  format: P,
  options: ProtocolOptionsMap[P] = {},
): (bytes: Uint8Array, ctx?: MessageContext) => MessageResult {
  const units = (options as UnitOptions).units;
  switch (format) {
    case "jsonl": {
      const configured = units ?? NO_CONFIGURED_UNITS;
      return (bytes, ctx) => {
        const frame = DataLabJson.fromBuffer(bytes);
        if (!frame.ok) return { kind: "error", stage: "parse", reason: frame.reason, message: frame.message };
        const r = decodeDataLabJson(frame.frame.value, ctx ?? {});
        if (r.kind !== "readings") return r;
        const notes = canonicalizeUnits(r.readings, r.notes, configured);
        return notes === r.notes ? r : { kind: "readings", readings: r.readings, notes };
      };
    }
    case "rtl433": {
      const o = options as ProtocolOptionsMap["rtl433"];
      const decode = withUnits((f: Rtl433Event) => decodeRtl433(f, o), units);
      return (bytes) => {
        const frame = Rtl433Event.fromBuffer(bytes);
        return frame.ok
          ? decode(frame.frame)
          : { kind: "error", stage: "parse", reason: frame.reason, message: frame.message };
      };
    }
    case "mysensors": {
      const o = options as ProtocolOptionsMap["mysensors"];
      checkMySensorsOptions(o);
      const decode = withUnits((f: MySensorsMessage) => decodeMySensors(f, o), units);
      return (bytes) => {
        const frame = MySensorsMessage.fromBuffer(bytes);
        return frame.ok
          ? decode(frame.frame)
          : { kind: "error", stage: "parse", reason: frame.reason, message: frame.message };
      };
    }
    default:
      throw new CodecConfigError(
        `format ${JSON.stringify(format)} cannot be read from whole messages; ` +
          `expected one of ${MESSAGE_FORMATS.join(", ")}`,
      );
  }
}
