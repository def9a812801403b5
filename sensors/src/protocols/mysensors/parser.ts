import { positiveIntOption } from "../common/errors";
import { LineParser } from "../common/line-parser";
import type { ParseResult } from "../common/result";
import { ParserStream } from "../common/stream";
import { MYS_DEFAULT_MAX_LINE_LENGTH } from "./constants";
import { MySensorsMessage } from "./frame";

export interface MySensorsParserOptions {
  /** Longest accepted line in bytes (default 256). */
  readonly maxLineLength?: number;
}

/**
 * The serial gateway's output: one message per `\n` line (the Arduino prints `\r\n` on some
 * builds; CR is stripped).
 */
export class MySensorsParser extends LineParser<MySensorsMessage> {
  constructor(options: MySensorsParserOptions = {}) {
    super({
      maxLineLength: positiveIntOption("maxLineLength", options.maxLineLength, MYS_DEFAULT_MAX_LINE_LENGTH),
      // `46;0;1;0;0;20` may be the start of `20.5`: a last line without its newline is not trusted.
      parseUnterminatedTail: false,
      parseLine: (line) => MySensorsMessage.fromBuffer(line),
    });
  }
}

export class MySensorsParserStream extends ParserStream<ParseResult<MySensorsMessage>> {
  constructor(options: MySensorsParserOptions = {}) {
    super(new MySensorsParser(options));
  }
}
