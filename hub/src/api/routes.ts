import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { clientKey, errorMessage, sendJson, type Logger, type Route } from "@datalab/shared";
import {
  ApiError,
  intParam,
  listParam,
  metricParam,
  parseQuery,
  sensorParam,
  textParam,
  timeParam,
} from "../http/params";
import { listGateways, listSensors, sparklines } from "./queries";
import { QueryGate, type Db } from "./gate";
import { quarantineHandler } from "./quarantine";
import { readingsHandler } from "./readings";
import { CsvBody, roundAggregate } from "./series";

export interface ApiOptions {
  /** Most rows (readings, buckets, sensors, gateways) in one answer. */
  maxRows: number;
  /** Longest time range one query may cover. */
  maxRangeMs: number;
  /** A gateway is online if it delivered or reported within this many seconds. */
  gatewayOnlineSeconds: number;
  /** For the 503 text when a query hits PostgreSQL's statement_timeout. */
  statementTimeoutMs: number;
  logger: Logger;
  now?: () => number;
}

const DAY = 86_400_000;
/** A sparkline is a glance: a few dozen points are enough, and more would only cost the list. */
const MAX_SPARK_POINTS = 200;
const MAX_LIST_PARAMS = 500;

/** The query API, each route under /api/. Wrap with ApiAuth.json when a token is configured. */
/**
 * `source`: the pool, or a QueryGate that hands each client (by address) its share of it.
 */
export function createApiRoutes(source: Db | QueryGate, o: ApiOptions): Record<string, Route> {
  const now = o.now ?? Date.now;
  const handle =
    (fn: (url: URL, db: Db, req: IncomingMessage) => Promise<unknown>): Route =>
    (req, res, url) =>
      serve(
        req,
        res,
        url,
        (u) => fn(u, source instanceof QueryGate ? source.forClient(clientKey(req)) : source, req),
        o,
      );

  /** `t0`: the request's one reading of the clock, so `-30d` and a defaulted `to` agree on "now". */
  const range = (
    t0: number,
    from: number | undefined,
    to: number | undefined,
    defaultSpan: number,
  ): { from: number; to: number } => {
    const t = to ?? t0;
    const f = from ?? t - defaultSpan;
    if (f >= t)
      throw ApiError.badRequest([
        {
          param: "from",
          message: `must be before "to" (from=${new Date(f).toISOString()}, to=${new Date(t).toISOString()})`,
        },
      ]);
    if (t - f > o.maxRangeMs) {
      throw ApiError.badRequest([
        {
          param: "from",
          message:
            `the range from..to spans ${formatSpan(t - f)}; ` +
            `at most ${formatSpan(o.maxRangeMs)} (DATALAB_API_MAX_RANGE_DAYS)`,
        },
      ]);
    }
    return { from: f, to: t };
  };

  return {
    "/api": handle(async () => ({
      endpoints: {
        "/api/sensors": "sensors and their last values. ?sensor=<id> (repeatable), ?prefix=, ?limit=",
        "/api/readings":
          "sensors' metrics over time. ?sensor=&metric= (required, repeatable: every sensor × metric), " +
          "?from=&to= (default: last 24 h), ?bucket=1m for min/max/avg/count per bucket, " +
          "else raw with ?limit= and ?order=asc|desc; ?format=csv or Accept: text/csv for CSV",
        "/api/quarantine":
          "what gateways refused, from their latest reports: " +
          "counts by reason and the newest payloads as text. ?gateway=",
        "/api/sparklines":
          "averages per bucket for many sensors. " +
          "?from=&to= (default: last 6 h), ?points=, ?metric=, ?sensor= (repeatable)",
        "/api/gateways": "gateways and their health",
        "/api/live":
          "Server-Sent Events: readings as the hub writes them. ?sensor= (repeatable), ?metric= (repeatable)",
      },
      times: "epoch ms, ISO-8601, now, or relative: -6h, now-7d",
      limits: { maxRows: o.maxRows, maxRangeDays: o.maxRangeMs / DAY },
    })),

    "/api/sensors": handle(async (url, db) => {
      const q = parseQuery(
        z.object({
          sensor: listParam(sensorParam, MAX_LIST_PARAMS).optional(),
          prefix: textParam(128).optional(),
          limit: intParam(1, o.maxRows).optional(),
        }),
        url.searchParams,
        ["sensor"],
      );
      const limit = q.limit ?? Math.min(1_000, o.maxRows);
      const r = await listSensors(db, {
        ...(q.sensor ? { ids: q.sensor } : {}),
        ...(q.prefix ? { prefix: q.prefix } : {}),
        limit,
      });
      return { ...r, limit };
    }),

    "/api/readings": handle(readingsHandler({ maxRows: o.maxRows, range, formatSpan, now })),

    "/api/quarantine": handle(quarantineHandler({ maxRows: o.maxRows })),

    "/api/sparklines": handle(async (url, db) => {
      const t0 = now();
      const q = parseQuery(
        z.object({
          from: timeParam(t0).optional(),
          to: timeParam(t0).optional(),
          points: intParam(2, MAX_SPARK_POINTS).optional(),
          metric: metricParam.optional(),
          sensor: listParam(sensorParam, MAX_LIST_PARAMS).optional(),
        }),
        url.searchParams,
        ["sensor"],
      );
      const { from, to } = range(t0, q.from, q.to, 6 * 3_600_000);
      const points = q.points ?? 40;
      const bucketMs = Math.max(1, Math.ceil((to - from) / points));
      const r = await sparklines(db, {
        from,
        to,
        bucketMs,
        maxRows: o.maxRows,
        ...(q.sensor ? { sensors: q.sensor } : {}),
        ...(q.metric ? { metric: q.metric } : {}),
      });
      return { from, to, bucketMs, ...r, series: r.series.map((x) => ({ ...x, avg: x.avg.map(roundAggregate) })) };
    }),

    "/api/gateways": handle(async (url, db) => {
      const q = parseQuery(z.object({ limit: intParam(1, o.maxRows).optional() }), url.searchParams);
      const r = await listGateways(db, {
        onlineSeconds: o.gatewayOnlineSeconds,
        limit: q.limit ?? Math.min(1_000, o.maxRows),
      });
      return { ...r, onlineWindowMs: o.gatewayOnlineSeconds * 1_000 };
    }),
  };
}

/** PostgreSQL SQLSTATEs that mean "not now" rather than "bug": connection trouble, shutdown, too many clients. */
const UNAVAILABLE = /^(08|53|57P0)/;

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  fn: (url: URL) => Promise<unknown>,
  o: ApiOptions,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    sendJson(res, 405, { error: `method ${req.method ?? "?"} not allowed: the API is read-only` });
    return;
  }
  try {
    const body = await fn(url);
    if (body instanceof CsvBody) {
      res.writeHead(200, {
        "content-type": "text/csv; charset=utf-8",
        "cache-control": "no-store",
        "content-disposition": `attachment; filename="${body.filename}"`,
        ...(body.truncated ? { "x-datalab-truncated": "true" } : {}),
      });
      res.end(body.toString());
      return;
    }
    sendJson(res, 200, body);
  } catch (err) {
    if (err instanceof ApiError) {
      if (err.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(err.retryAfterSeconds));
      sendJson(res, err.status, { error: err.message, ...(err.problems.length > 0 ? { problems: err.problems } : {}) });
      return;
    }
    const code = (err as { code?: unknown }).code;
    if (code === "57014") {
      sendJson(res, 503, {
        error:
          `the query ran longer than ${o.statementTimeoutMs} ms (DATALAB_API_STATEMENT_TIMEOUT_MS): ` +
          "ask for a shorter range or a larger bucket",
      });
      return;
    }
    if ((typeof code === "string" && UNAVAILABLE.test(code)) || isConnectionError(err)) {
      o.logger.warn({ err: errorMessage(err), path: url.pathname }, "database unavailable for an API query");
      res.setHeader("retry-after", "5");
      sendJson(res, 503, { error: "the database is not answering; try again shortly" });
      return;
    }
    throw err;
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"].includes(code);
  // pg-pool's connect timeout carries no code; its message is its only mark.
  return err instanceof Error && /timeout exceeded when trying to connect|Connection terminated/.test(err.message);
}

export function formatSpan(ms: number): string {
  if (ms % DAY === 0) return `${ms / DAY} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1_000 === 0) return `${ms / 1_000} s`;
  return `${ms} ms`;
}
