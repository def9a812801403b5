export { JSONL_DEFAULT_MAX_LINE_LENGTH } from "./constants";
export { DataLabJson, JsonLine, type JsonObject } from "./frame";
export { JsonlParser, JsonlParserStream, type JsonlParserOptions } from "./parser";
export { decodeDataLabJson, decodeJsonl, SENSOR_KEYS, TIME_KEYS, type DataLabJsonOptions } from "./decode";
export { encodeJsonl } from "./encode";
