import { Transform, type TransformCallback } from "node:stream";
import { asBuffer, type ChunkConsumer } from "./parser";

/**
 * Node stream adapter: bytes in, one object per parse (or codec) result out.
 * The parser does the work; this class only moves chunks, so the same logic runs with and
 * without streams. A parser never throws on bad input; if it throws anyway (a bug), the
 * error is passed to the stream rather than lost.
 */
export class ParserStream<T> extends Transform {
  constructor(readonly consumer: ChunkConsumer<T>) {
    super({ readableObjectMode: true, writableObjectMode: false });
  }

  override _transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, encoding) : asBuffer(chunk as Uint8Array);
      for (const result of this.consumer.push(bytes)) this.push(result);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      for (const result of this.consumer.flush()) this.push(result);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}
