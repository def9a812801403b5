import { positiveIntOption } from "../common/errors";
import { LineParser } from "../common/line-parser";
import type { ParseResult } from "../common/result";
import { ParserStream } from "../common/stream";
import { JSONL_DEFAULT_MAX_LINE_LENGTH } from "./constants";
import { DataLabJson } from "./frame";

export interface JsonlParserOptions {
  /** Longest accepted line in bytes (default 8192). */
  readonly maxLineLength?: number;
}

/** DataLab JSON Lines from a serial port or a pipe: one object or SenML array per `\n`-terminated line. */
export class JsonlParser extends LineParser<DataLabJson> {
  constructor(options: JsonlParserOptions = {}) {
    super({
      maxLineLength: positiveIntOption("maxLineLength", options.maxLineLength, JSONL_DEFAULT_MAX_LINE_LENGTH),
      // A JSON object is self-delimiting: a cut-off last line fails to parse rather than
      // yielding a wrong value, so it is safe to try it.
      parseUnterminatedTail: true,
      parseLine: (line) => DataLabJson.fromBuffer(line),
    });
  }
}

export class JsonlParserStream extends ParserStream<ParseResult<DataLabJson>> {
  constructor(options: JsonlParserOptions = {}) {
    super(new JsonlParser(options));
  }
}
