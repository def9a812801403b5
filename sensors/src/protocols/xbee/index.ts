export {
  XBEE_CONTROL_FRAME_TYPES,
  XBEE_DEFAULT_MAX_FRAME_LENGTH,
  XBEE_ESCAPE,
  XBEE_S2_ADC_MV_PER_COUNT,
  XBEE_START,
  XBEE_SUPPLY_MV_PER_COUNT,
  XBeeFrameType,
  type XBeeApiMode,
} from "./constants";
export { escapeBytes, needsEscape } from "./escape";
export { XBeeFrame, xbeeChecksum } from "./frame";
export { XBeeParser, XBeeParserStream, type XBeeParserOptions } from "./parser";
export {
  analogPinName,
  buildIoSample,
  buildReceivePacket,
  parseExplicitReceivePacket,
  parseIoSample,
  parseReceivePacket,
  XBEE_SUPPLY_PIN,
  type XBeeExplicitReceivePacket,
  type XBeeIoSample,
  type XBeeIoSampleInit,
  type XBeeReceivePacket,
  type XBeeReceivePacketInit,
  type XBeeSource,
  type XBeeSourceInit,
} from "./packets";
export { parseTextPayload, type TextPayload } from "./payload-text";
export {
  decodeXBee,
  xbeeSensorId,
  type XBeeDecodeOptions,
  type XBeePinMap,
  type XBeePinMapping,
} from "./decode";
export { encodeXBee, type XBeeEncodeInput } from "./encode";
