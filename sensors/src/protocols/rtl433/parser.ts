import { positiveIntOption } from "../common/errors";
import { LineParser } from "../common/line-parser";
import type { ParseResult } from "../common/result";
import { ParserStream } from "../common/stream";
import { RTL433_DEFAULT_MAX_LINE_LENGTH } from "./constants";
import { Rtl433Event } from "./frame";

export interface Rtl433ParserOptions {
  /** Longest accepted line in bytes (default 8192). */
  readonly maxLineLength?: number;
}

/** `rtl_433 -F json` output (stdout or a pipe): one event per line. */
export class Rtl433Parser extends LineParser<Rtl433Event> {
  constructor(options: Rtl433ParserOptions = {}) {
    super({
      maxLineLength: positiveIntOption("maxLineLength", options.maxLineLength, RTL433_DEFAULT_MAX_LINE_LENGTH),
      parseUnterminatedTail: true,
      parseLine: (line) => Rtl433Event.fromBuffer(line),
    });
  }
}

export class Rtl433ParserStream extends ParserStream<ParseResult<Rtl433Event>> {
  constructor(options: Rtl433ParserOptions = {}) {
    super(new Rtl433Parser(options));
  }
}
