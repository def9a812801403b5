import { z } from "zod";
import { GATEWAY_ID_PATTERN, QuarantineSample } from "@datalab/shared";
import { ApiError, intParam, parseQuery } from "../http/params";
import type { Db } from "./gate";

export interface GatewayQuarantine {
  gatewayId: string;
  /** Messages quarantined, by reason, as the gateway counted them (its whole SQLite quarantine). */
  counts: Record<string, number>;
  /** The newest ones, newest first, as its last report carried them (payload cut to 1 KiB of text). */
  recent: QuarantineSample[];
  reportedAt: number | null;
}

const gatewayParam = z
  .string()
  .regex(GATEWAY_ID_PATTERN, "expected a gateway id (letters, digits, - and _, at most 64)");

/**
 * GET /api/quarantine[?gateway=][&limit=]: what gateways refused, from their latest health
 * reports. The payload is data, never markup: JSON carries it as a string, and the dashboard
 * puts it in a text node.
 */
export function quarantineHandler(o: { maxRows: number }) {
  return async (url: URL, db: Db): Promise<unknown> => {
    const q = parseQuery(
      z.object({ gateway: gatewayParam.optional(), limit: intParam(1, o.maxRows).optional() }),
      url.searchParams,
    );
    const limit = q.limit ?? Math.min(1_000, o.maxRows);
    const r = await db.query<{
      gateway_id: string;
      detail: { quarantine?: unknown; recentQuarantine?: unknown } | null;
      reported_at: number | null;
    }>(
      `SELECT gateway_id, health_detail AS detail, round(extract(epoch from reported_at) * 1000)::float8 AS reported_at
         FROM gateways WHERE ($1::text IS NULL OR gateway_id = $1) ORDER BY gateway_id LIMIT $2`,
      [q.gateway ?? null, limit + 1],
    );
    if (q.gateway && r.rows.length === 0)
      throw new ApiError(404, `no gateway ${JSON.stringify(q.gateway)} has delivered a batch (see /api/gateways)`);
    const gateways: GatewayQuarantine[] = r.rows.slice(0, limit).map((g) => ({
      gatewayId: g.gateway_id,
      counts: counts(g.detail?.quarantine),
      recent: samples(g.detail?.recentQuarantine),
      reportedAt: g.reported_at,
    }));
    return { gateways, truncated: r.rows.length > limit };
  };
}

function counts(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (v && typeof v === "object" && !Array.isArray(v))
    for (const [k, n] of Object.entries(v)) if (typeof n === "number" && Number.isFinite(n)) out[k] = n;
  return out;
}

/** Stored as the report said; re-checked, as a row written by an older hub may hold anything. */
function samples(v: unknown): QuarantineSample[] {
  if (!Array.isArray(v)) return [];
  const out: QuarantineSample[] = [];
  for (const x of v) {
    const s = QuarantineSample.safeParse(x);
    if (s.success) out.push(s.data);
  }
  return out;
}
