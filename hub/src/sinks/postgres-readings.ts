import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Reading } from "@datalab/shared";

/** What the statements of the PostgreSQL sink run on: a pool, or a client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

const COPY_READINGS =
  "COPY readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source, sensor_time)" +
  " FROM STDIN (FORMAT binary)";

/** Readings in one COPY (one statement: all or none; a reading already there fails it). */
export async function copyReadings(client: pg.PoolClient | pg.Client, readings: readonly Reading[]): Promise<void> {
  const data = encodeCopyBinary(readings);
  const stream = client.query(copyFrom(COPY_READINGS));
  await new Promise<void>((resolve, reject) => {
    stream.once("error", reject);
    stream.once("finish", resolve);
    stream.end(data);
  });
}

/**
 * COPY's binary format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"):
 * the 11-byte signature, int32 flags and int32 header-extension length, then per tuple an int16
 * field count and per field an int32 length (-1 for NULL) and the type's send format, all
 * big-endian; the trailer is an int16 -1.
 */
const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00];
const HEADER_BYTES = SIGNATURE.length + 8;
const FIELDS = 11;
/** A tuple's bytes but its text: field count, 11 lengths, seq, ts, value, received_at, sensor_time. */
const TUPLE_FIXED_BYTES = 2 + FIELDS * 4 + 8 + 8 + 8 + 8 + 1;
/** timestamptz is int64 microseconds since 2000-01-01 00:00 UTC. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;

/** The readings as one COPY ... (FORMAT binary) payload, in one buffer. */
function encodeCopyBinary(readings: readonly Reading[]): Buffer {
  // Sized for ASCII text, which it nearly always is; text with wider characters grows it.
  let size = HEADER_BYTES + 2;
  for (const r of readings) {
    size += TUPLE_FIXED_BYTES + r.gatewayId.length + r.instance.length + r.sensorId.length + r.metric.length;
    size += r.source.length + (r.unit === null ? 0 : r.unit.length);
  }
  const w = new CopyWriter(size);
  for (const b of SIGNATURE) w.buf[w.off++] = b;
  w.int32(0);
  w.int32(0);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    w.int16(FIELDS);
    w.text(r.gatewayId);
    w.text(r.instance);
    w.int32(8);
    w.int64(r.seq);
    w.text(r.sensorId);
    w.text(r.metric);
    w.int32(8);
    w.int64(pgMicros(r.ts));
    w.int32(8);
    w.float8(r.value);
    if (r.unit === null) w.int32(-1);
    else w.text(r.unit);
    w.int32(8);
    w.int64(pgMicros(r.receivedAt));
    w.text(r.source);
    // sensor_time: true when ts is the sensor's own (then sensor, metric and ts identify the
    // measurement, and the unique index folds a copy); NULL when stamped on receipt, which no
    // unique index folds (NULLs are distinct): foldWindowed decides those.
    if (r.rxWindow === undefined) {
      w.int32(1);
      w.buf[w.off++] = 1;
    } else w.int32(-1);
  }
  w.int16(-1);
  return w.buf.subarray(0, w.off);
}

/** Epoch ms → microseconds since 2000-01-01 UTC; rounded, so a fractional ms keeps its exact microseconds. */
function pgMicros(ms: number): number {
  return Math.round((ms - PG_EPOCH_MS) * 1000);
}

/**
 * Big-endian fields into one buffer sized for the rows as if their text were ASCII. A wider
 * string takes its extra bytes from `spare` (room beyond that size, grown by doubling), so the
 * room left always covers the remaining fields as sized.
 */
class CopyWriter {
  buf: Buffer;
  off = 0;
  private view: DataView;
  private spare = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  int16(v: number): void {
    this.view.setInt16(this.off, v);
    this.off += 2;
  }

  int32(v: number): void {
    this.view.setInt32(this.off, v);
    this.off += 4;
  }

  /** A safe integer (|v| < 2^53) as int64, in two halves: no BigInt per field. */
  int64(v: number): void {
    const hi = Math.floor(v / TWO_32);
    this.view.setInt32(this.off, hi);
    this.view.setUint32(this.off + 4, v - hi * TWO_32);
    this.off += 8;
  }

  float8(v: number): void {
    this.view.setFloat64(this.off, v);
    this.off += 8;
  }

  /** Length and UTF-8 bytes; ASCII copied by hand, which beats a native call for short strings. */
  text(s: string): void {
    const n = s.length;
    const start = this.off + 4;
    const buf = this.buf;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    let bytes = n;
    if (i < n) {
      // UTF-8 never takes fewer bytes than UTF-16 code units.
      bytes = Buffer.byteLength(s, "utf8");
      if (bytes - n > this.spare) this.grow(bytes - n);
      this.spare -= bytes - n;
      this.buf.write(s, start, bytes, "utf8");
    }
    this.view.setInt32(this.off, bytes);
    this.off = start + bytes;
  }

  private grow(extra: number): void {
    const by = Math.max(this.buf.length, extra);
    this.spare += by;
    const next = Buffer.allocUnsafe(this.buf.length + by);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
}

/**
 * Insert readings idempotently; returns how many rows were new, and how many readings were
 * newly folded: not there under their own key (a redelivery) yet not inserted, because their
 * measurement's row was (their keys go to readings_folded; one recorded before is a duplicate).
 */
export async function insertReadings(
  client: Queryable,
  readings: readonly Reading[],
): Promise<{ inserted: number; folded: number }> {
  if (readings.length === 0) return { inserted: 0, folded: 0 };
  const n = readings.length;
  const gw = new Array<string>(n);
  const inst = new Array<string>(n);
  const seq = new Array<number>(n);
  const sensor = new Array<string>(n);
  const metric = new Array<string>(n);
  const ts = new Array<number>(n);
  const value = new Array<number>(n);
  const unit = new Array<string | null>(n);
  const recv = new Array<number>(n);
  const source = new Array<string>(n);
  const sensorTime = new Array<boolean | null>(n);
  for (let i = 0; i < n; i++) {
    const r = readings[i]!;
    gw[i] = r.gatewayId;
    inst[i] = r.instance;
    seq[i] = r.seq;
    sensor[i] = r.sensorId;
    metric[i] = r.metric;
    ts[i] = r.ts;
    value[i] = r.value;
    unit[i] = r.unit;
    recv[i] = r.receivedAt;
    source[i] = r.source;
    sensorTime[i] = r.rxWindow === undefined ? true : null;
  }
  // One snapshot for the whole statement: `f` sees the readings rows from before the insert only.
  const res = await client.query<{ inserted: number; folded: number }>(
    `WITH x AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::float8[],
                            $7::float8[], $8::text[], $9::float8[], $10::text[], $11::boolean[])
         AS x(g, i, s, sid, m, t, v, u, rc, src, st)
     ), ins AS (
       INSERT INTO readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source,
                             sensor_time)
       SELECT g, i, s, sid, m, to_timestamp(t / 1000.0), v, u, to_timestamp(rc / 1000.0), src, st FROM x
       ON CONFLICT DO NOTHING
       RETURNING gateway_id, instance, seq
     ), f AS (
       INSERT INTO readings_folded (gateway_id, instance, seq)
       SELECT g, i, s FROM x
        WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.gateway_id = x.g AND ins.instance = x.i AND ins.seq = x.s)
          AND NOT EXISTS (SELECT 1 FROM readings r WHERE r.gateway_id = x.g AND r.instance = x.i AND r.seq = x.s)
       ON CONFLICT DO NOTHING
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM f)::int AS folded`,
    [gw, inst, seq, sensor, metric, ts, value, unit, recv, source, sensorTime],
  );
  return res.rows[0]!;
}
