import type { OutboxRows } from "./rows";
import { rowCost } from "./space";
import type { BatchRange, EncodedRow, FullPolicy, Totals } from "./types";

/** What the policy did to make room: rows it deleted, and how many new rows still go in. */
export interface Eviction {
  /** Messages, readings and bytes of the oldest rows deleted. */
  dropped: Totals;
  /** The first `kept` new rows go in; the rest are refused. */
  kept: number;
  /** Readings of the new rows refused. */
  refused: number;
}

/**
 * Inside the commit transaction: make about `over` bytes of room for `incoming` by the policy.
 * drop_oldest deletes the oldest rows (and refuses newest rows only when nothing is left to
 * drop); refuse_newest leaves the newest rows of this group out. `inflight` is never dropped.
 */
export function evict(
  rows: OutboxRows,
  policy: FullPolicy,
  incoming: readonly EncodedRow[],
  over: number,
  inflight: BatchRange | undefined,
): Eviction {
  const out: Eviction = { dropped: { messages: 0, readings: 0, bytes: 0 }, kept: incoming.length, refused: 0 };
  if (over > 0 && policy === "drop_oldest") {
    const d = dropOldest(rows, over, inflight);
    over -= d.cost;
    out.dropped = d;
  }
  while (over > 0 && out.kept > 0) {
    const r = incoming[--out.kept]!;
    over -= rowCost(r.bytes);
    out.refused += r.n;
  }
  return out;
}

/**
 * Delete the oldest rows until about `cost` bytes are free. The batch in flight is kept: its
 * rows must still be there to be resent byte for byte after a crash (and settle counts them).
 */
function dropOldest(rows: OutboxRows, cost: number, f: BatchRange | undefined): Totals & { cost: number } {
  const out = { messages: 0, readings: 0, bytes: 0, cost: 0 };
  let upTo = -1;
  for (const r of rows.oldestFirst()) {
    if (out.cost >= cost) break;
    if (f && r.id >= f.firstId && r.id <= f.lastId) continue;
    upTo = r.id;
    out.messages += r.m;
    out.readings += r.n;
    out.bytes += r.bytes;
    out.cost += rowCost(r.bytes);
  }
  if (upTo >= 0) rows.deleteOldest(upTo, f);
  return out;
}
