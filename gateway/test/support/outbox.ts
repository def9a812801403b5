import { join } from "node:path";
import type Database from "better-sqlite3";
import { namedMessage, silentLogger, type WireMessage } from "@datalab/shared";
import { tempDir } from "@datalab/shared/testing";
import { Outbox, type AcceptedMessage, type DropReason, type OutboxOptions } from "../../src/outbox/store";

/** One accepted message with one reading whose value is `i` (so a test can find it again). */
export function message(
  i: number,
  opts: { sensor?: string; padding?: number; readings?: number } = {},
): AcceptedMessage {
  const sensor = opts.sensor ?? "s1";
  const pad = opts.padding ? `,"pad":"${"x".repeat(opts.padding)}"` : "";
  const n = opts.readings ?? 1;
  const now = 1_764_000_000_000 + i;
  return {
    source: "mqtt:test/sensors",
    receivedAt: now,
    payload: Buffer.from(`{"name":"${sensor}","value":${i}${pad}}`),
    readings: Array.from({ length: n }, (_, k) => ({
      sensorId: sensor,
      metric: k === 0 ? "value" : `m${k}`,
      value: i,
      ts: now,
    })),
  };
}

export function messages(from: number, count: number, opts: Parameters<typeof message>[1] = {}): AcceptedMessage[] {
  return Array.from({ length: count }, (_, k) => message(from + k, opts));
}

export interface TestOutbox {
  outbox: Outbox;
  dir: string;
  path: string;
  drops: Record<DropReason, number>;
  reopen(extra?: Partial<OutboxOptions>): Outbox;
}

/** An outbox in a fresh temp dir, with its drops counted by reason. */
export function openTestOutbox(extra: Partial<OutboxOptions> = {}, dir = tempDir("datalab-outbox-")): TestOutbox {
  const path = join(dir, "outbox.db");
  const drops: Record<DropReason, number> = { outbox_full: 0, disk_full: 0, commit_failed: 0, outbox_damaged: 0 };
  const open = (more: Partial<OutboxOptions> = {}) =>
    Outbox.open(path, { logger: silentLogger(), onDrop: (reason, n) => (drops[reason] += n), ...extra, ...more });
  const t: TestOutbox = {
    outbox: open(),
    dir,
    path,
    drops,
    reopen(more = {}) {
      t.outbox.close();
      t.outbox = open(more);
      return t.outbox;
    },
  };
  return t;
}

/** Seqs of the rows now in the outbox, in order. */
export function seqsIn(outbox: Outbox): number[] {
  const out: number[] = [];
  for (const r of outbox.scan(0)) for (let s = r.firstSeq; s <= r.lastSeq; s++) out.push(s);
  return out;
}

/** The wire messages now in the outbox, in order (a row holds a few, comma-joined), named whatever their format. */
export function wireMessagesIn(outbox: Outbox): WireMessage[] {
  return [...outbox.scan(0)].flatMap((r) => wireMessagesOf(r.wire));
}

/** A row's text as named wire messages (format 2's arrays given their names). */
export function wireMessagesOf(wire: string): WireMessage[] {
  return (JSON.parse(`[${wire}]`) as unknown[]).map((m) => {
    if (!Array.isArray(m)) return m as WireMessage;
    const named = namedMessage(m);
    if ("error" in named) throw new Error(named.error);
    return named.message as WireMessage;
  });
}

/**
 * The outbox's own SQLite connection, kept private by the outbox. Only for what no other
 * connection has: per-connection pragmas (synchronous, max_page_count, query_only) a test
 * reads or sets to stage a fault, and a checkpoint at a chosen moment.
 */
export function connectionOf(outbox: Outbox): Database.Database {
  return (outbox as unknown as { db: Database.Database }).db;
}
