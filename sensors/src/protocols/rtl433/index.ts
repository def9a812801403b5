export {
  RTL433_DEFAULT_MAX_LINE_LENGTH,
  RTL433_FIELD_RULES,
  type Rtl433FieldRule,
  type Rtl433Source,
} from "./constants";
export { Rtl433Event } from "./frame";
export { Rtl433Parser, Rtl433ParserStream, type Rtl433ParserOptions } from "./parser";
export { rtl433SensorId } from "./sensor-id";
export { rtl433Timestamp, type Rtl433TimeOptions } from "./time";
export { decodeRtl433, type Rtl433DecodeOptions } from "./decode";
export { encodeRtl433 } from "./encode";
