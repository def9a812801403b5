import { createReadStream } from "node:fs";

export interface FileLine {
  /** 1-based. */
  line: number;
  /** Without its `\n` / `\r\n`; undefined when the line was longer than the limit. */
  text: string | undefined;
}

/** A recorded sensor row is well under this; a longer "line" is a binary file or a missing newline. */
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * The lines of a file, streamed: memory is one chunk plus at most MAX_LINE_BYTES of a partial
 * line, whatever the file's size (the Intel Lab file is 2.3 M lines). An over-long line is
 * reported (text undefined) and its bytes dropped up to the next newline.
 */
export class LineReader {
  /** Bytes of the lines handed out so far (not of the chunks read ahead): the progress made. */
  bytesRead = 0;

  constructor(
    readonly path: string,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {}

  async *lines(): AsyncGenerator<FileLine> {
    const stream = createReadStream(this.path, { highWaterMark: 256 * 1024 });
    let partial: Buffer[] = [];
    let partialBytes = 0;
    let tooLong = false;
    let line = 0;
    const finish = (tail: Buffer): FileLine => {
      line += 1;
      this.bytesRead += partialBytes + tail.length + 1;
      if (tooLong || partialBytes + tail.length > this.maxLineBytes) {
        tooLong = false;
        partial = [];
        partialBytes = 0;
        return { line, text: undefined };
      }
      const whole = partial.length === 0 ? tail : Buffer.concat([...partial, tail]);
      partial = [];
      partialBytes = 0;
      const end = whole.length > 0 && whole[whole.length - 1] === 0x0d ? whole.length - 1 : whole.length;
      return { line, text: whole.toString("utf8", 0, end) };
    };
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl === -1) break;
        yield finish(chunk.subarray(start, nl));
        start = nl + 1;
      }
      if (start < chunk.length && !tooLong) {
        const rest = chunk.subarray(start);
        if (partialBytes + rest.length > this.maxLineBytes) {
          tooLong = true;
          partial = [];
          partialBytes = 0;
        } else {
          // Copied, so a short tail does not keep the whole 256 KiB chunk alive.
          partial.push(Buffer.from(rest));
          partialBytes += rest.length;
        }
      }
    }
    if (partialBytes > 0 || tooLong) yield finish(Buffer.alloc(0));
  }
}
