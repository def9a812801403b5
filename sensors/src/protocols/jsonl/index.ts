export { JSONL_DEFAULT_MAX_LINE_LENGTH } from "./constants";
export { JsonLine, type JsonObject } from "./frame";
export { JsonlParser, JsonlParserStream, type JsonlParserOptions } from "./parser";
export { decodeJsonl } from "./decode";
export { encodeJsonl } from "./encode";
