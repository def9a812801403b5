import type { IncrementalParser } from "./parser";
import { asBuffer } from "./parser";
import type { FrameResult, ParseResult } from "./result";

const LF = 0x0a;
const CR = 0x0d;

export interface LineParserConfig<F> {
  /**
   * Longest accepted line, in bytes before the `\n` (a `\r` before it counts). Longer lines
   * are reported once as `line_too_long` with their first `maxLineLength` bytes, and the rest
   * up to the next newline is dropped, so memory stays bounded whatever arrives.
   */
  readonly maxLineLength: number;
  /**
   * What `flush()` does with a last line that has no newline. A self-delimiting format (a JSON
   * object must end in `}`) is parsed: a cut-off object fails to parse anyway. A format that
   * is not (`1;2;1;0;0;20` may be the start of `20.5`) is reported as `truncated_frame`.
   */
  readonly parseUnterminatedTail: boolean;
  /** Turns one line (no terminator, a private copy) into a frame. Must not throw. */
  readonly parseLine: (line: Buffer) => FrameResult<F>;
}

/**
 * Splits a byte stream into lines and hands each to a format's `parseLine`.
 * Text protocols resync trivially: the next newline ends whatever went wrong.
 * Blank lines (only spaces, tabs, CR) are skipped without a result: serial consoles print them.
 */
export class LineParser<F> implements IncrementalParser<F> {
  readonly #config: LineParserConfig<F>;
  /** Holds the start of a line across chunks; never more than maxLineLength bytes. */
  readonly #pending: Buffer;
  #pendingLength = 0;
  /** True inside an over-long line that was already reported: drop bytes until newline. */
  #discarding = false;

  constructor(config: LineParserConfig<F>) {
    this.#config = config;
    this.#pending = Buffer.allocUnsafe(config.maxLineLength);
  }

  get bufferedBytes(): number {
    return this.#pendingLength;
  }

  push(chunk: Uint8Array): ParseResult<F>[] {
    const buf = asBuffer(chunk);
    const out: ParseResult<F>[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(LF, start);
      if (nl === -1) break;
      this.#completeLine(buf, start, nl, out);
      start = nl + 1;
    }
    if (start < buf.length) this.#keepTail(buf, start, out);
    return out;
  }

  flush(): ParseResult<F>[] {
    const out: ParseResult<F>[] = [];
    if (!this.#discarding && this.#pendingLength > 0) {
      const line = this.#pending.subarray(0, this.#pendingLength);
      if (this.#config.parseUnterminatedTail) {
        this.#emitLine(line, out);
      } else if (!isBlank(line, line.length)) {
        out.push({
          kind: "error",
          reason: "truncated_frame",
          message: "input ended in the middle of a line (no newline)",
          raw: Buffer.from(line),
        });
      }
    }
    this.reset();
    return out;
  }

  reset(): void {
    this.#pendingLength = 0;
    this.#discarding = false;
  }

  #completeLine(buf: Buffer, start: number, end: number, out: ParseResult<F>[]): void {
    if (this.#discarding) {
      // The tail of an over-long line, already reported when it crossed the limit.
      this.#discarding = false;
      return;
    }
    const max = this.#config.maxLineLength;
    const total = this.#pendingLength + (end - start);
    if (total > max) {
      out.push(this.#tooLong(buf, start, end, total));
      this.#pendingLength = 0;
      return;
    }
    if (this.#pendingLength === 0) {
      this.#emitLine(buf.subarray(start, end), out);
      return;
    }
    buf.copy(this.#pending, this.#pendingLength, start, end);
    this.#pendingLength = 0;
    this.#emitLine(this.#pending.subarray(0, total), out);
  }

  #keepTail(buf: Buffer, start: number, out: ParseResult<F>[]): void {
    if (this.#discarding) return;
    const total = this.#pendingLength + (buf.length - start);
    if (total > this.#config.maxLineLength) {
      // Report now rather than at the newline: the line can only grow, and holding it would
      // need memory we promised not to use.
      out.push(this.#tooLong(buf, start, buf.length, total));
      this.#pendingLength = 0;
      this.#discarding = true;
      return;
    }
    buf.copy(this.#pending, this.#pendingLength, start);
    this.#pendingLength = total;
  }

  #tooLong(buf: Buffer, start: number, end: number, seen: number) {
    const max = this.#config.maxLineLength;
    const head = Buffer.allocUnsafe(max);
    const fromPending = Math.min(this.#pendingLength, max);
    this.#pending.copy(head, 0, 0, fromPending);
    buf.copy(head, fromPending, start, Math.min(end, start + (max - fromPending)));
    return {
      kind: "error" as const,
      reason: "line_too_long" as const,
      message: `line longer than ${max} bytes (${seen} seen); first ${max} bytes kept, rest discarded`,
      raw: head,
    };
  }

  #emitLine(view: Buffer, out: ParseResult<F>[]): void {
    let length = view.length;
    if (length > 0 && view[length - 1] === CR) length--;
    if (isBlank(view, length)) return;
    // Copy: `view` may point into the caller's chunk or our scratch buffer, and the gateway
    // may keep `raw` for quarantine long after this call.
    const raw = Buffer.from(view.subarray(0, length));
    const parsed = this.#config.parseLine(raw);
    out.push(
      parsed.ok
        ? { kind: "frame", frame: parsed.frame, raw }
        : { kind: "error", reason: parsed.reason, message: parsed.message, raw },
    );
  }
}

function isBlank(buf: Buffer, length: number): boolean {
  for (let i = 0; i < length; i++) {
    const b = buf[i];
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}
