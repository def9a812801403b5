import { existsSync } from "node:fs";
import { ConfigError } from "@datalab/shared";
import Database from "better-sqlite3";
import type { QuarantineEntry } from "./outbox/types";

/** One refused payload from the outbox's quarantine table, its bytes as text. */
export interface QuarantineListing extends Omit<QuarantineEntry, "payload"> {
  /** The payload as UTF-8 text (invalid bytes as U+FFFD), cut to the limit given. */
  payload: string;
  payloadBytes: number;
  /** True when `payload` holds less than the whole payload. */
  cut: boolean;
}

export interface QuarantineFilter {
  sinceMs?: number;
  reason?: string;
  limit: number;
  payloadChars: number;
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: an ISO time, epoch milliseconds, or a duration back from now (`30m`, `2h`, `7d`). */
export function parseSince(text: string, now = Date.now()): number {
  const d = DURATION.exec(text.trim());
  if (d) return now - Number(d[1]) * UNIT_MS[d[2] as keyof typeof UNIT_MS];
  if (/^\d+$/.test(text.trim())) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new ConfigError([
      `--since ${JSON.stringify(text)}: expected an ISO time (2026-01-01T00:00:00Z), epoch ms, or a duration ` +
        `back from now (30m, 2h, 7d)`,
    ]);
  return t;
}

/**
 * The newest quarantined payloads first, read from the outbox file opened read-only (the
 * gateway may be running: SQLite's WAL lets a reader in beside it).
 */
export function listQuarantine(path: string, f: QuarantineFilter): { entries: QuarantineListing[]; total: number } {
  if (!existsSync(path)) throw new Error(`no outbox at ${path} (is DATALAB_DATA_DIR right?)`);
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const where = ["received_at >= @since", "(@reason IS NULL OR reason = @reason)"].join(" AND ");
    const params = { since: f.sinceMs ?? 0, reason: f.reason ?? null, limit: f.limit, chars: f.payloadChars * 4 };
    const total = db
      .prepare<typeof params, { n: number }>(`SELECT count(*) AS n FROM quarantine WHERE ${where}`)
      .get(params)!.n;
    // Only a prefix of each payload is read: a huge refused payload costs nothing here.
    const rows = db
      .prepare<
        typeof params,
        { id: number; receivedAt: number; source: string; reason: string; detail: string; head: Buffer; size: number }
      >(
        `SELECT id, received_at AS receivedAt, source, reason, detail,
                substr(payload, 1, @chars) AS head, length(payload) AS size
           FROM quarantine WHERE ${where} ORDER BY id DESC LIMIT @limit`,
      )
      .all(params);
    const entries = rows.map((r) => {
      const head = Buffer.isBuffer(r.head) ? r.head : Buffer.from(String(r.head ?? ""));
      const text = head.toString("utf8");
      const payload = text.length > f.payloadChars ? text.slice(0, f.payloadChars) : text;
      return {
        id: r.id,
        receivedAt: r.receivedAt,
        source: r.source,
        reason: r.reason,
        detail: r.detail,
        payload,
        payloadBytes: r.size,
        cut: payload.length < text.length || head.length < r.size,
      };
    });
    return { entries, total };
  } finally {
    db.close();
  }
}

/**
 * For a terminal: one entry per block, every string JSON-quoted so that control characters
 * and escape sequences in a payload are shown, never acted on.
 */
export function formatQuarantine(r: { entries: QuarantineListing[]; total: number }, path: string): string {
  if (r.total === 0) return `no quarantined payloads in ${path}\n`;
  const shown = r.entries.length < r.total ? ` (newest ${r.entries.length} shown; --limit N for more)` : "";
  const lines = [`${r.total} quarantined payload${r.total === 1 ? "" : "s"} in ${path}${shown}`];
  for (const e of r.entries) {
    lines.push(`#${e.id} ${new Date(e.receivedAt).toISOString()} ${e.reason} from ${JSON.stringify(e.source)}`);
    lines.push(`  detail:  ${JSON.stringify(e.detail)}`);
    lines.push(`  payload: ${JSON.stringify(e.payload)}${e.cut ? ` … (${e.payloadBytes} bytes)` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}
