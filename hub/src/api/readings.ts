import type { IncomingMessage } from "node:http";
import { z } from "zod";
import {
  ApiError,
  durationParam,
  intParam,
  listParam,
  metricParam,
  parseQuery,
  sensorParam,
  timeParam,
} from "../http/params";
import { bucketRows, CsvBody, iso, rawRows, seriesInfo, type SeriesInfo, type SeriesKey } from "./series";
import type { Db } from "./gate";

const MAX_SENSORS = 50;
const MAX_METRICS = 20;
const DAY = 86_400_000;

export interface ReadingsOptions {
  maxRows: number;
  /** The route's range check (default span, max range), shared with the other routes. */
  range(
    t0: number,
    from: number | undefined,
    to: number | undefined,
    defaultSpan: number,
  ): { from: number; to: number };
  formatSpan(ms: number): string;
  now: () => number;
}

/** Asked for CSV: `format=csv`, or no `format` and an Accept header naming text/csv. */
function wantsCsv(format: string | undefined, req: IncomingMessage | undefined): boolean {
  if (format !== undefined) return format === "csv";
  return /\btext\/csv\b/i.test(req?.headers.accept ?? "");
}

/**
 * GET /api/readings: one series as before (`sensor=&metric=`), or several (`sensor=` and
 * `metric=` repeated: every sensor × metric that has readings), as JSON or CSV.
 */
export function readingsHandler(o: ReadingsOptions) {
  return async (url: URL, db: Db, req?: IncomingMessage): Promise<unknown> => {
    const t0 = o.now();
    const q = parseQuery(
      z.object({
        sensor: listParam(sensorParam, MAX_SENSORS).min(1),
        metric: listParam(metricParam, MAX_METRICS).min(1),
        from: timeParam(t0).optional(),
        to: timeParam(t0).optional(),
        bucket: durationParam.optional(),
        limit: intParam(1, o.maxRows).optional(),
        order: z.enum(["asc", "desc"], { error: "expected asc or desc" }).optional(),
        format: z.enum(["json", "csv"], { error: "expected json or csv" }).optional(),
      }),
      url.searchParams,
      ["sensor", "metric"],
    );
    const { from, to } = o.range(t0, q.from, q.to, DAY);
    const keys = uniqueKeys(q.sensor, q.metric);
    const single = keys.length === 1;
    const csv = wantsCsv(q.format, req);
    if (q.bucket !== undefined && (q.limit !== undefined || q.order !== undefined)) {
      throw ApiError.badRequest([
        {
          param: q.limit !== undefined ? "limit" : "order",
          message: "applies to raw readings only; with bucket= every bucket in the range is returned",
        },
      ]);
    }

    const found = await seriesInfo(db, keys);
    if (found.length === 0) {
      throw new ApiError(
        404,
        single
          ? `no readings of metric ${JSON.stringify(keys[0]!.metric)} for sensor ${JSON.stringify(keys[0]!.sensor)} ` +
              "(see /api/sensors for what exists)"
          : `none of the ${keys.length} sensor × metric series has readings (see /api/sensors for what exists)`,
      );
    }
    const missing = keys.filter((k) => !found.some((f) => f.sensor === k.sensor && f.metric === k.metric));

    if (q.bucket !== undefined) {
      const buckets = Math.ceil((to - from) / q.bucket) * found.length;
      if (buckets > o.maxRows) {
        throw ApiError.badRequest([
          {
            param: "bucket",
            message:
              `${o.formatSpan(q.bucket)} buckets over ${o.formatSpan(to - from)} for ${found.length} series ` +
              `make ${buckets} buckets; at most ${o.maxRows}: use a larger bucket or a shorter range`,
          },
        ]);
      }
      const b = await bucketRows(db, { keys: found, from, to, bucketMs: q.bucket });
      if (csv) {
        const unit = unitOf(found);
        return new CsvBody(
          "readings.csv",
          ["time", "sensor_id", "metric", "min", "avg", "max", "count", "unit"],
          b.ts.map((t, i) => [
            iso(t),
            b.sensor[i]!,
            b.metric[i]!,
            b.min[i]!,
            b.avg[i]!,
            b.max[i]!,
            b.count[i]!,
            unit(b.sensor[i]!, b.metric[i]!),
          ]),
        );
      }
      const series = found.map((f) => {
        const idx = indexesOf(b.sensor, b.metric, f);
        return {
          ...head(f),
          rows: idx.length,
          ts: idx.map((i) => b.ts[i]!),
          min: idx.map((i) => b.min[i]!),
          max: idx.map((i) => b.max[i]!),
          avg: idx.map((i) => b.avg[i]!),
          count: idx.map((i) => b.count[i]!),
        };
      });
      if (single) {
        const { sensor, metric, unit, extent, rows, ...cols } = series[0]!;
        return { sensor, metric, from, to, unit, extent, bucketMs: q.bucket, rows, truncated: false, ...cols };
      }
      return { from, to, bucketMs: q.bucket, series, missing, truncated: false };
    }

    const limit = q.limit ?? o.maxRows;
    const r = await rawRows(db, { keys: found, from, to, limit, order: q.order ?? "asc" });
    if (csv) {
      const unit = unitOf(found);
      return new CsvBody(
        "readings.csv",
        ["time", "sensor_id", "metric", "value", "unit", "received_at"],
        r.ts.map((t, i) => [
          iso(t),
          r.sensor[i]!,
          r.metric[i]!,
          r.value[i]!,
          unit(r.sensor[i]!, r.metric[i]!),
          iso(r.receivedAt[i]!),
        ]),
        r.truncated,
      );
    }
    const series = found.map((f) => {
      const idx = indexesOf(r.sensor, r.metric, f);
      return {
        ...head(f),
        rows: idx.length,
        ts: idx.map((i) => r.ts[i]!),
        value: idx.map((i) => r.value[i]!),
        receivedAt: idx.map((i) => r.receivedAt[i]!),
      };
    });
    if (single) {
      const { sensor, metric, unit, extent, rows, ...cols } = series[0]!;
      return { sensor, metric, from, to, unit, extent, bucketMs: null, rows, truncated: r.truncated, ...cols };
    }
    return { from, to, bucketMs: null, series, missing, truncated: r.truncated };
  };
}

function uniqueKeys(sensors: readonly string[], metrics: readonly string[]): SeriesKey[] {
  const seen = new Set<string>();
  const out: SeriesKey[] = [];
  for (const sensor of sensors) {
    for (const metric of metrics) {
      const k = `${sensor}\u0000${metric}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ sensor, metric });
    }
  }
  return out;
}

function head(f: SeriesInfo) {
  return { sensor: f.sensor, metric: f.metric, unit: f.unit, extent: { first: f.first, last: f.last } };
}

function indexesOf(sensors: readonly string[], metrics: readonly string[], k: SeriesKey): number[] {
  const out: number[] = [];
  for (let i = 0; i < sensors.length; i++) if (sensors[i] === k.sensor && metrics[i] === k.metric) out.push(i);
  return out;
}

function unitOf(found: readonly SeriesInfo[]): (sensor: string, metric: string) => string | null {
  const m = new Map(found.map((f) => [`${f.sensor}\u0000${f.metric}`, f.unit]));
  return (sensor, metric) => m.get(`${sensor}\u0000${metric}`) ?? null;
}
