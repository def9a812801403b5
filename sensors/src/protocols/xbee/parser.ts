import { CodecConfigError, positiveIntOption } from "../common/errors";
import { asBuffer, type IncrementalParser } from "../common/parser";
import type { ParseResult } from "../common/result";
import { ParserStream } from "../common/stream";
import { XBEE_DEFAULT_MAX_FRAME_LENGTH, type XBeeApiMode } from "./constants";
import type { XBeeFrame } from "./frame";
import { scanApi1, scanApi2, type ScanLimits } from "./scan";

export interface XBeeParserOptions {
  /** AP setting of the radio: 1 (default) or 2 (escaped). Prefer 2: it resyncs immediately. */
  readonly mode?: XBeeApiMode;
  /** Largest accepted length field (default 512). Longer frames are `frame_too_long`. */
  readonly maxFrameLength?: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Incremental XBee API frame parser. Holds at most one partial frame between chunks (at most
 * maxFrameLength + 4 bytes, twice that escaped) or a short run of garbage.
 * In API mode 1 a stray 0x7E can hold later frames back until its declared length has
 * arrived; a source may call `flush()` after the line has been idle to release them.
 */
export class XBeeParser implements IncrementalParser<XBeeFrame> {
  readonly mode: XBeeApiMode;
  readonly #limits: ScanLimits;
  readonly #scratch: Buffer;
  #pending: Buffer = EMPTY;

  constructor(options: XBeeParserOptions = {}) {
    const mode = options.mode ?? 1;
    if (mode !== 1 && mode !== 2) throw new CodecConfigError(`XBee API mode must be 1 or 2, got ${String(mode)}`);
    this.mode = mode;
    const maxFrameLength = positiveIntOption("maxFrameLength", options.maxFrameLength, XBEE_DEFAULT_MAX_FRAME_LENGTH);
    if (maxFrameLength > 0xffff) throw new CodecConfigError("maxFrameLength cannot exceed 65535 (16-bit length field)");
    this.#limits = { maxFrameLength, maxGarbageRun: maxFrameLength + 4 };
    this.#scratch = Buffer.allocUnsafe(maxFrameLength + 3);
  }

  get bufferedBytes(): number {
    return this.#pending.length;
  }

  push(chunk: Uint8Array): ParseResult<XBeeFrame>[] {
    const bytes = asBuffer(chunk);
    const data = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    const out: ParseResult<XBeeFrame>[] = [];
    const consumed = this.#scan(data, false, out);
    // Copy what is kept: the caller may reuse its chunk buffer after we return.
    this.#pending = consumed < data.length ? Buffer.from(data.subarray(consumed)) : EMPTY;
    return out;
  }

  flush(): ParseResult<XBeeFrame>[] {
    const out: ParseResult<XBeeFrame>[] = [];
    this.#scan(this.#pending, true, out);
    this.#pending = EMPTY;
    return out;
  }

  reset(): void {
    this.#pending = EMPTY;
  }

  #scan(data: Buffer, final: boolean, out: ParseResult<XBeeFrame>[]): number {
    return this.mode === 1
      ? scanApi1(data, this.#limits, final, out)
      : scanApi2(data, this.#limits, final, out, this.#scratch);
  }
}

export class XBeeParserStream extends ParserStream<ParseResult<XBeeFrame>> {
  constructor(options: XBeeParserOptions = {}) {
    super(new XBeeParser(options));
  }
}
