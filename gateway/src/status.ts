import { existsSync } from "node:fs";
import { QUARANTINE_SAMPLE, type GatewayReport, type QuarantineSample } from "@datalab/shared";
import Database from "better-sqlite3";
import type { ForwardingState } from "./forward/forwarder";
import type { SourceStatus } from "./sources/index";
import { fileBytes } from "./outbox/space";
import type { BatchRange, FullPolicy, QuarantineEntry } from "./outbox/store";
import type { UplinkStatus } from "./uplink/types";

/**
 * The gateway's status as data: served on /status and /healthz, printed by `pnpm gateway
 * status`, and rebuilt from the SQLite file alone when no gateway answers (`online: false`).
 */
export interface GatewayStatus {
  gatewayId: string;
  instance: string;
  /** False when read from the outbox file because no gateway answered. */
  online: boolean;
  /** Null when offline: nobody holds a connection. */
  uplink: UplinkStatus | null;
  forwarding: {
    state: ForwardingState | "unknown";
    readingsPerSecond: number | null;
    /** Seconds to empty the outbox at the current rate; null when nothing is being forwarded. */
    etaSeconds: number | null;
    maxReadingsPerSec: number;
    maxBytesPerSec: number;
  };
  sources: SourceStatus[];
  outbox: {
    readings: number;
    messages: number;
    /** Bytes of wire messages waiting. */
    bytes: number;
    /** The database file + WAL on disk, and the cap it is held to. */
    fileBytes: number;
    maxBytes: number | null;
    policy: FullPolicy | null;
    oldestAgeSeconds: number | null;
    inflight: { firstSeq: number; lastSeq: number } | null;
    path: string;
    /** Damage found at start (docs/gateway-durability.md, "Damaged outbox"); absent offline. */
    damage?: { kind: string; detail: string; lostReadings: number; movedTo?: string | undefined }[];
  };
  quarantine: Record<string, number>;
  /**
   * Numeric fields not stored with a known unit since start, `format:field:outcome` -> count
   * (unit_unknown, unit_unrecognized: stored; metadata, superseded: counted only).
   */
  fields?: Record<string, number>;
  /** Readings given up since the gateway started, by reason. */
  dropped: Record<string, number>;
  lastError: string | undefined;
}

/**
 * Status from the outbox file alone, opened read-only (no lock kept, nothing written): what
 * waits, how old it is, what was quarantined. Used by the CLI when no gateway answers.
 */
export function readOfflineStatus(path: string, gatewayId: string, now = Date.now()): GatewayStatus {
  if (!existsSync(path)) throw new Error(`no outbox at ${path} (is DATALAB_DATA_DIR right?)`);
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const meta = new Map(
      db
        .prepare<[], { key: string; value: string }>("SELECT key, value FROM meta")
        .all()
        .map((r) => [r.key, r.value]),
    );
    // Schema 2 counts each row's messages (m); before it, a row was one message.
    const version = db.pragma("user_version", { simple: true }) as number;
    const messages = version >= 2 ? "coalesce(sum(m), 0)" : "count(*)";
    // Schema 4 may store a row deflated: it takes its packed bytes.
    const bytes = version >= 4 ? "octet_length(wire) + coalesce(octet_length(packed), 0)" : "octet_length(wire)";
    const t = db
      .prepare<[], { messages: number; readings: number | null; bytes: number | null }>(
        `SELECT ${messages} AS messages, sum(n) AS readings, sum(${bytes}) AS bytes FROM outbox`,
      )
      .get()!;
    const oldest = db
      .prepare<[], { receivedAt: number }>("SELECT received_at AS receivedAt FROM outbox ORDER BY id LIMIT 1")
      .get();
    const quarantine: Record<string, number> = {};
    for (const r of db
      .prepare<[], { reason: string; n: number }>("SELECT reason, count(*) AS n FROM quarantine GROUP BY reason")
      .all()) {
      quarantine[r.reason] = r.n;
    }
    const inflight = meta.get("inflight") ? (JSON.parse(meta.get("inflight")!) as BatchRange) : undefined;
    return {
      gatewayId,
      instance: meta.get("instance") ?? "",
      online: false,
      uplink: null,
      forwarding: {
        state: "unknown",
        readingsPerSecond: null,
        etaSeconds: null,
        maxReadingsPerSec: 0,
        maxBytesPerSec: 0,
      },
      sources: [],
      outbox: {
        readings: t.readings ?? 0,
        messages: t.messages,
        bytes: t.bytes ?? 0,
        fileBytes: fileBytes(path).total,
        maxBytes: null,
        policy: null,
        oldestAgeSeconds: oldest ? Math.max(0, (now - oldest.receivedAt) / 1000) : null,
        inflight: inflight ? { firstSeq: inflight.firstSeq, lastSeq: inflight.lastSeq } : null,
        path,
      },
      quarantine,
      dropped: {},
      lastError: undefined,
    };
  } finally {
    db.close();
  }
}

/** A few lines a person reads at a glance; `--json` gives the data itself. */
export function formatStatus(s: GatewayStatus, where: string, now = Date.now()): string {
  const o = s.outbox;
  const lines: string[] = [];
  lines.push(
    s.online
      ? `Gateway ${s.gatewayId} (instance ${s.instance}) is running — ${where}`
      : `Gateway ${s.gatewayId} (instance ${s.instance || "?"}): NO GATEWAY ANSWERS at ${where}; ` +
          "read the outbox file instead (offline)",
  );
  if (s.uplink) {
    const u = s.uplink;
    const to = u.server ? ` to ${u.server}` : "";
    const problem = u.problem ? ` — problem: ${u.problem}` : "";
    lines.push(`  uplink      ${u.state}${to} for ${duration((now - u.since) / 1000)}${problem}`);
  } else {
    lines.push("  uplink      unknown (gateway offline)");
  }
  const cap = o.maxBytes ? ` of ${bytes(o.maxBytes)} cap (${Math.round((100 * o.fileBytes) / o.maxBytes)}%)` : "";
  lines.push(
    `  outbox      ${count(o.readings)} readings in ${count(o.messages)} messages, ${bytes(o.bytes)}; ` +
      `file ${bytes(o.fileBytes)}${cap}` +
      (o.policy ? `, when full: ${o.policy.replace("_", " ")}` : ""),
  );
  lines.push(
    `  oldest      ${o.oldestAgeSeconds === null ? "— (outbox empty)" : `${duration(o.oldestAgeSeconds)} ago`}`,
  );
  const f = s.forwarding;
  if (s.online) {
    const rate = `${count(Math.round(f.readingsPerSecond ?? 0))} readings/s`;
    const eta =
      o.readings === 0
        ? "nothing to drain"
        : f.etaSeconds === null
          ? "drain time unknown (nothing forwarded lately)"
          : `about ${duration(f.etaSeconds)} to drain`;
    const caps = [
      f.maxReadingsPerSec > 0 ? `${count(f.maxReadingsPerSec)} readings/s` : "",
      f.maxBytesPerSec > 0 ? `${bytes(f.maxBytesPerSec)}/s` : "",
    ].filter(Boolean);
    const capped = caps.length ? ` (capped at ${caps.join(", ")})` : "";
    lines.push(`  forwarding  ${f.state.replace(/_/g, " ")}, ${rate}, ${eta}${capped}`);
  } else {
    const again = o.inflight
      ? ` (batch of seq ${o.inflight.firstSeq}..${o.inflight.lastSeq} goes again first at the next start)`
      : "";
    lines.push(`  forwarding  not running${again}`);
  }
  if (s.sources.length > 0) lines.push(`  sources     ${s.sources.map((x) => `${x.name} ${x.state}`).join(", ")}`);
  for (const x of s.sources) if (x.warning) lines.push(`  WARNING     ${x.name}: ${x.warning}`);
  for (const d of o.damage ?? []) {
    const kept = d.movedTo ? ` (kept at ${d.movedTo})` : "";
    lines.push(`  DAMAGE      ${d.kind} at start: about ${count(d.lostReadings)} readings lost; ${d.detail}${kept}`);
  }
  lines.push(`  quarantine  ${listOf(s.quarantine) || "none"}`);
  if (s.fields && Object.keys(s.fields).length > 0) lines.push(`  fields      ${fieldsLine(s.fields)}`);
  if (s.online) lines.push(`  dropped     ${listOf(s.dropped) || "none"}`);
  lines.push(`  last error  ${s.lastError ?? "none"}`);
  return `${lines.join("\n")}\n`;
}

/** `unit unknown: jsonl pressure 3, rtl433 current 1; not stored: rtl433 rssi 5 (metadata)`, the biggest first. */
function fieldsLine(fields: Record<string, number>): string {
  const stored: string[] = [];
  const notStored: string[] = [];
  const entries = Object.entries(fields).sort((a, b) => b[1] - a[1]);
  for (const [key, n] of entries.slice(0, 12)) {
    const first = key.indexOf(":");
    const last = key.lastIndexOf(":");
    const [format, field, outcome] = [key.slice(0, first), key.slice(first + 1, last), key.slice(last + 1)];
    if (outcome === "unit_unknown") stored.push(`${format} ${field} ${count(n)}`);
    else if (outcome === "unit_unrecognized") stored.push(`${format} ${field} ${count(n)} (unit not in the table)`);
    else notStored.push(`${format} ${field} ${count(n)} (${outcome})`);
  }
  const more = entries.length > 12 ? `; ${entries.length - 12} more in --json` : "";
  return (
    [
      stored.length ? `unit unknown: ${stored.join(", ")}` : "",
      notStored.length ? `not stored: ${notStored.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join("; ") + more
  );
}

function listOf(r: Record<string, number>): string {
  return Object.entries(r)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${count(n)}`)
    .join(", ");
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/**
 * The health report sent to the hub (shared's GatewayReport): what only the gateway knows,
 * its backlog, uplink and quarantine, shown on the hub's gateway panel.
 */
export function encodeReport(
  s: GatewayStatus,
  commitsFailing: boolean,
  recentQuarantine?: readonly QuarantinedRow[],
  now = Date.now(),
): Uint8Array {
  const oldestAt = s.outbox.oldestAgeSeconds === null ? null : Math.round(now - s.outbox.oldestAgeSeconds * 1000);
  const health = commitsFailing
    ? "outbox_failing"
    : s.uplink && s.uplink.state !== "connected"
      ? `uplink_${s.uplink.state}`
      : "ok";
  const report: GatewayReport = {
    v: 1,
    gatewayId: s.gatewayId,
    instance: s.instance,
    sentAt: now,
    health,
    backlog: { readings: s.outbox.readings, bytes: s.outbox.bytes, oldestAt },
    quarantine: s.quarantine,
    ...(recentQuarantine ? { recentQuarantine: sampleWithin(recentQuarantine, QUARANTINE_SAMPLE.maxJsonBytes) } : {}),
    ...(s.fields ? { fields: s.fields } : {}),
    dropped: s.dropped,
    forwardingPerSecond: s.forwarding.readingsPerSecond,
    lastError: s.lastError ? s.lastError.slice(0, 1000) : null,
  };
  return Buffer.from(JSON.stringify(report));
}

/** A quarantined message as the outbox lists it; its row id is not reported. */
export type QuarantinedRow = Omit<QuarantineEntry, "id">;

/**
 * The newest samples whose JSON fits `budget` bytes: the hub refuses a report over 64 KiB, and
 * escaped control bytes take 6 each.
 */
function sampleWithin(rows: readonly QuarantinedRow[], budget: number): QuarantineSample[] {
  const out: QuarantineSample[] = [];
  let used = 0;
  for (const q of rows.slice(0, QUARANTINE_SAMPLE.entries)) {
    const one = quarantineSample(q);
    used += Buffer.byteLength(JSON.stringify(one));
    if (used > budget) break;
    out.push(one);
  }
  return out;
}

/** A quarantined message cut to what a report carries (shared's QUARANTINE_SAMPLE): text, never the whole payload. */
export function quarantineSample(q: QuarantinedRow): QuarantineSample {
  const cut = (t: string, n: number) => (t.length > n ? t.slice(0, n) : t);
  return {
    receivedAt: q.receivedAt,
    source: cut(q.source, 300),
    reason: cut(q.reason, 64),
    detail: cut(q.detail, QUARANTINE_SAMPLE.detailChars),
    // Decoding only the head keeps the cost bounded whatever the payload's size.
    payload: cut(
      q.payload.subarray(0, QUARANTINE_SAMPLE.payloadChars * 4).toString("utf8"),
      QUARANTINE_SAMPLE.payloadChars,
    ),
    payloadBytes: q.payload.byteLength,
  };
}
