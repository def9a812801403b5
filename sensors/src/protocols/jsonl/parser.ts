import { positiveIntOption } from "../common/errors";
import { LineParser } from "../common/line-parser";
import type { ParseResult } from "../common/result";
import { ParserStream } from "../common/stream";
import { JSONL_DEFAULT_MAX_LINE_LENGTH } from "./constants";
import { JsonLine } from "./frame";

export interface JsonlParserOptions {
  /** Longest accepted line in bytes (default 8192). */
  readonly maxLineLength?: number;
}

/** JSON Lines from a serial port or a pipe: one object per `\n`-terminated line. */
export class JsonlParser extends LineParser<JsonLine> {
  constructor(options: JsonlParserOptions = {}) {
    super({
      maxLineLength: positiveIntOption("maxLineLength", options.maxLineLength, JSONL_DEFAULT_MAX_LINE_LENGTH),
      // A JSON object is self-delimiting: a cut-off last line fails to parse rather than
      // yielding a wrong value, so it is safe to try it.
      parseUnterminatedTail: true,
      parseLine: (line) => JsonLine.fromBuffer(line),
    });
  }
}

export class JsonlParserStream extends ParserStream<ParseResult<JsonLine>> {
  constructor(options: JsonlParserOptions = {}) {
    super(new JsonlParser(options));
  }
}
