import type pg from "pg";
import type { Reading } from "@datalab/shared";

/**
 * One row per measurement (docs/radios.md). A reading stamped with the sensor's own time is
 * identified by (sensor, metric, ts): the unique index `readings_measurement` folds a second
 * copy by itself. A reading stamped on receipt carries its format's window (`rxWindow`): it is
 * the same measurement as a stored reading of the same sensor, metric and value within that
 * many ms, which no index can say, so it is decided here, in the writing transaction.
 */

/** Advisory lock class of the window folds; the second key is the sensor's slot. */
const FOLD_LOCK_CLASS = 0x666f6c64;
/** Slots a transaction may lock at most: bounded, so a batch of many sensors cannot exhaust the lock table. */
const FOLD_LOCK_SLOTS = 64;

export interface Folds {
  /** The readings to write. */
  keep: readonly Reading[];
  /** Not written: a stored reading (another gateway's, an earlier repeat) is the same measurement. */
  folded: ReadonlySet<Reading>;
  /** Not written: already stored under its own key (a redelivery). */
  stored: ReadonlySet<Reading>;
}

const NONE: ReadonlySet<Reading> = new Set();

/**
 * Sets aside the receipt-stamped readings whose measurement is already stored, or earlier in
 * `readings`. Two hub processes writing copies of one measurement at once must not both see
 * "none stored": the sensors' advisory locks, taken first in the transaction and in slot
 * order (no deadlock), make them take turns until COMMIT.
 */
export async function foldWindowed(client: pg.PoolClient, readings: readonly Reading[]): Promise<Folds> {
  const windowed: Reading[] = [];
  for (const r of readings) if (r.rxWindow !== undefined && r.rxWindow > 0) windowed.push(r);
  if (windowed.length === 0) return { keep: readings, folded: NONE, stored: NONE };

  const slots = [...new Set(windowed.map((r) => slotOf(r.sensorId)))].sort((a, b) => a - b);
  await client.query("SELECT pg_advisory_xact_lock($1, s) FROM unnest($2::int[]) AS s", [FOLD_LOCK_CLASS, slots]);

  // One time range per sensor and metric: its readings' span, widened by their largest window.
  const ranges = new Map<string, { sid: string; m: string; lo: number; hi: number; i: number }>();
  for (const r of windowed) {
    const k = keyOf(r);
    const w = r.rxWindow!;
    const q = ranges.get(k);
    if (!q) ranges.set(k, { sid: r.sensorId, m: r.metric, lo: r.ts - w, hi: r.ts + w, i: ranges.size + 1 });
    else {
      q.lo = Math.min(q.lo, r.ts - w);
      q.hi = Math.max(q.hi, r.ts + w);
    }
  }
  const qs = [...ranges.values()];
  const res = await client.query<{
    k: string;
    value: number;
    t: number;
    gateway_id: string;
    instance: string;
    seq: string;
  }>(
    `SELECT q.k, r.value, round(extract(epoch FROM r.ts) * 1000)::float8 AS t, r.gateway_id, r.instance, r.seq
       FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) WITH ORDINALITY AS q(sid, m, lo, hi, k)
       JOIN readings r ON r.sensor_id = q.sid AND r.metric = q.m
                      AND r.ts BETWEEN to_timestamp(q.lo / 1000.0) AND to_timestamp(q.hi / 1000.0)`,
    [qs.map((q) => q.sid), qs.map((q) => q.m), qs.map((q) => q.lo), qs.map((q) => q.hi)],
  );
  const byIndex = qs.map(() => [] as Neighbour[]);
  for (const row of res.rows)
    byIndex[Number(row.k) - 1]!.push({
      value: row.value,
      t: row.t,
      own: `${row.gateway_id}\u0000${row.instance}\u0000${row.seq}`,
    });

  const folded = new Set<Reading>();
  const stored = new Set<Reading>();
  // In time order, so that the first of a batch's repeats is the one kept.
  windowed.sort((a, b) => a.ts - b.ts);
  for (const r of windowed) {
    const near = byIndex[ranges.get(keyOf(r))!.i - 1]!;
    const own = `${r.gatewayId}\u0000${r.instance}\u0000${r.seq}`;
    if (near.some((n) => n.own === own)) stored.add(r);
    else if (near.some((n) => n.value === r.value && Math.abs(n.t - r.ts) <= r.rxWindow!)) folded.add(r);
    else near.push({ value: r.value, t: r.ts, own });
  }
  if (folded.size === 0 && stored.size === 0) return { keep: readings, folded, stored };
  return { keep: readings.filter((r) => !folded.has(r) && !stored.has(r)), folded, stored };
}

interface Neighbour {
  value: number;
  t: number;
  /** gateway, instance, seq: the reading's own key. */
  own: string;
}

function keyOf(r: Reading): string {
  return `${r.sensorId}\u0000${r.metric}`;
}

/** FNV-1a of the sensor id, into FOLD_LOCK_SLOTS. */
function slotOf(sensorId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sensorId.length; i++) {
    h ^= sensorId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % FOLD_LOCK_SLOTS;
}

/**
 * Records the keys of folded readings; returns how many were not recorded before. A
 * redelivered batch folds the same readings again and finds them there: they are duplicates
 * then, not new folds, so the per-gateway fold count stays exact.
 */
export async function recordFolds(client: pg.PoolClient, folded: readonly Reading[]): Promise<number> {
  if (folded.length === 0) return 0;
  const res = await client.query(
    `INSERT INTO readings_folded (gateway_id, instance, seq)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
     ON CONFLICT DO NOTHING`,
    [folded.map((r) => r.gatewayId), folded.map((r) => r.instance), folded.map((r) => r.seq)],
  );
  return res.rowCount ?? 0;
}
