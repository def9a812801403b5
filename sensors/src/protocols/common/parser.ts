import type { ParseResult } from "./result";

/**
 * A byte-stream parser usable without Node streams: feed it chunks as they arrive, in any
 * split, and it returns what it could complete. It keeps a bounded amount of state between
 * calls and never throws on bad input.
 */
export interface IncrementalParser<F> {
  /** Consumes one chunk; returns the frames and errors it completed, in input order. */
  push(chunk: Uint8Array): ParseResult<F>[];
  /**
   * Reports whatever is still buffered (a partial frame becomes `truncated_frame`, unless the
   * format is self-delimiting) and empties the buffer. The parser stays usable, so a source
   * may also call this after the line has been idle for a while.
   */
  flush(): ParseResult<F>[];
  /** Drops buffered bytes without reporting them. */
  reset(): void;
  /** Bytes held between calls; bounded by the parser's maximum frame or line length. */
  readonly bufferedBytes: number;
}

/** Anything with the push/flush shape, so one stream adapter serves parsers and codecs. */
export interface ChunkConsumer<T> {
  push(chunk: Uint8Array): T[];
  flush(): T[];
}

/** A view of `chunk` as a Buffer without copying. */
export function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
