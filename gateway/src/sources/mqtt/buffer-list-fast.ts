/**
 * Fast paths for the `bl` BufferList that mqtt-packet parses MQTT packets from. Each of its
 * reads (a byte, a 16- or 32-bit number, a topic string) first slices a new Buffer view, and
 * finds where the offset falls with a new array: about seven views and 1 KB of garbage per
 * PUBLISH, 15 % of all the gateway allocated under a flood. A read that falls inside the
 * list's first chunk, nearly every read since the parser consumes each packet as it ends, is
 * taken from that chunk directly; any other read goes the original way, so results are the
 * same. The bundle applies this to the BufferList it bundles (scripts/bundle.ts).
 */

/** The part of bl's BufferList prototype this relies on. */
export interface BufferListLike {
  _bufs: Buffer[];
  readUInt8(offset?: number): number;
  readUInt16BE(offset?: number): number;
  readUInt32BE(offset?: number): number;
  toString(encoding?: BufferEncoding, start?: number, end?: number): string;
  slice(start?: number, end?: number): Buffer;
  get(index: number): number | undefined;
}

const READS = { readUInt8: 1, readUInt16BE: 2, readUInt32BE: 4 } as const;

/** Returns false, changing nothing, when the prototype is not the shape this was written for. */
export function addFastPaths(proto: BufferListLike, probe: BufferListLike): boolean {
  if (!Array.isArray(probe._bufs) || (proto as { _datalabFast?: boolean })._datalabFast) return false;
  for (const m of Object.keys(READS) as (keyof typeof READS)[]) {
    const size = READS[m];
    const slow = proto[m];
    if (typeof slow !== "function") return false;
    proto[m] = function (this: BufferListLike, offset = 0) {
      const b = this._bufs[0];
      return b !== undefined && offset >= 0 && offset + size <= b.length ? b[m](offset) : slow.call(this, offset);
    };
  }
  const slowGet = proto.get;
  proto.get = function (this: BufferListLike, index: number) {
    const b = this._bufs[0];
    return b !== undefined && index >= 0 && index < b.length ? b[index] : slowGet.call(this, index);
  };
  const slowToString = proto.toString;
  proto.toString = function (this: BufferListLike, encoding?: BufferEncoding, start?: number, end?: number) {
    const b = this._bufs[0];
    return b !== undefined && inside(b, start, end)
      ? b.toString(encoding, start, end)
      : slowToString.call(this, encoding, start, end);
  };
  const slowSlice = proto.slice;
  proto.slice = function (this: BufferListLike, start?: number, end?: number) {
    const b = this._bufs[0];
    return b !== undefined && inside(b, start, end) ? b.subarray(start, end) : slowSlice.call(this, start, end);
  };
  (proto as { _datalabFast?: boolean })._datalabFast = true;
  return true;
}

function inside(b: Buffer, start: number | undefined, end: number | undefined): start is number {
  return (
    typeof start === "number" &&
    typeof end === "number" &&
    Number.isInteger(start) &&
    Number.isInteger(end) &&
    start >= 0 &&
    start <= end &&
    end <= b.length
  );
}
