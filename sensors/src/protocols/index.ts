/**
 * Protocol codecs: bytes from a serial port (or a pipe, or an MQTT payload) to readings.
 * One folder per protocol, each split into constants, a frame value object (fromBuffer /
 * toBuffer, checks there), an incremental parser that resyncs (plus a Transform), a pure
 * decode, and an encode for simulators. `createParser` picks one by name.
 */
export * from "./common/result";
export { CodecConfigError, EncodeError } from "./common/errors";
export { asBuffer, type ChunkConsumer, type IncrementalParser } from "./common/parser";
export { LineParser, type LineParserConfig } from "./common/line-parser";
export { ParserStream } from "./common/stream";
export { parseDecimal, toEpochMillis, type TimestampResult } from "./common/numbers";
export { sanitizeIdPart } from "./common/names";
export {
  canonicalizeUnits,
  canonicalUnit,
  GENERIC_UNITS,
  isKnownUnit,
  knownUnits,
  NO_CONFIGURED_UNITS,
  splitUnitSuffix,
  UnitConfig,
  type ConfiguredUnit,
  type FieldNote,
  type FieldOutcome,
} from "./common/units";

export * from "./jsonl/index";
export * from "./mysensors/index";
export * from "./xbee/index";
export * from "./rtl433/index";

export {
  createMessageDecoder,
  createParser,
  isMessageFormat,
  isProtocolName,
  MESSAGE_FORMATS,
  type MessageContext,
  type MessageFormat,
  type MessageResult,
  type UnitOptions,
  PROTOCOL_NAMES,
  type ProtocolCodec,
  type ProtocolFrameMap,
  type ProtocolName,
  type ProtocolOptionsMap,
  type XBeeCodecOptions,
} from "./registry";
