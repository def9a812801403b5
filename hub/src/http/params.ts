import { z } from "zod";
import { DataLabError, MetricName, SensorId } from "@datalab/shared";

/** One thing wrong with a request, naming the parameter. */
export interface Problem {
  param: string;
  message: string;
}

/** A request the API refuses; `status` is the HTTP status, `problems` each name a parameter. */
export class ApiError extends DataLabError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly problems: readonly Problem[] = [],
    /** Sent as Retry-After: the refusal is about load, not about the request. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  static badRequest(problems: readonly Problem[]): ApiError {
    return new ApiError(400, problems.map((p) => `parameter "${p.param}": ${p.message}`).join("; "), problems);
  }
}

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION = /^(\d{1,9})(ms|s|m|h|d|w)$/;
const RELATIVE = /^(?:now)?-(\d{1,9})(ms|s|m|h|d|w)$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
/** Same bound as the reading contract: a time after 2200 is a unit mistake. */
const MAX_EPOCH_MS = 7_258_118_400_000;
/**
 * The longest range DATALAB_API_MAX_RANGE_DAYS allows; a longer bucket means nothing and overflows
 * PostgreSQL's interval arithmetic.
 */
const MAX_DURATION_MS = 36_500 * UNIT_MS.d;

export function parseDurationMs(v: string): number | undefined {
  const m = DURATION.exec(v);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms <= MAX_DURATION_MS ? ms : undefined;
}

/**
 * A point in time: epoch milliseconds, ISO-8601, `now`, or relative to now (`-6h`, `now-7d`).
 * Relative forms are what an analyst types; absolute ones are what a program sends.
 */
export function parseTime(v: string, now: number): number | undefined {
  if (v === "now") return now;
  if (/^\d{1,16}$/.test(v)) {
    const ms = Number(v);
    return ms <= MAX_EPOCH_MS ? ms : undefined;
  }
  const rel = RELATIVE.exec(v);
  if (rel) {
    // Before 1970 is outside what PostgreSQL's to_timestamp gets from the API, and no reading is there.
    const t = now - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS];
    return t >= 0 ? t : undefined;
  }
  if (ISO_8601.test(v)) {
    const ms = Date.parse(v);
    return Number.isNaN(ms) || ms < 0 || ms > MAX_EPOCH_MS ? undefined : ms;
  }
  return undefined;
}

const TIME_HELP =
  "expected epoch milliseconds, an ISO-8601 time, `now`, " +
  "or a time relative to now such as -6h or now-7d, between 1970 and 2200";

/** A time parameter; `now` is bound when the schema is made, once per request. */
export function timeParam(now: number) {
  return z.string().transform((v, ctx) => {
    const t = parseTime(v.trim(), now);
    if (t === undefined) {
      ctx.addIssue({ code: "custom", message: `${TIME_HELP}, got ${JSON.stringify(v.slice(0, 40))}` });
      return z.NEVER;
    }
    return t;
  });
}

export const durationParam = z.string().transform((v, ctx) => {
  const ms = parseDurationMs(v.trim());
  if (ms === undefined || ms === 0) {
    ctx.addIssue({
      code: "custom",
      message:
        "expected a duration such as 500ms, 30s, 5m, 1h or 1d, at most 36500d, " +
        `got ${JSON.stringify(v.slice(0, 40))}`,
    });
    return z.NEVER;
  }
  return ms;
});

export function intParam(min: number, max: number) {
  const msg = `expected an integer from ${min} to ${max}`;
  return z
    .string()
    .regex(/^\d{1,12}$/, msg)
    .transform(Number)
    .pipe(z.number().int().min(min, msg).max(max, msg));
}

/**
 * Free text matched against stored ids (`prefix=`): no control characters, which no stored id
 * holds and PostgreSQL refuses (NUL) in text.
 */
export function textParam(max: number) {
  return z
    .string()
    .max(max, `at most ${max} characters`)
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), "must not hold control characters (such as NUL)");
}

export const sensorParam = z.string().pipe(SensorId);
export const metricParam = z.string().pipe(MetricName);
/** A repeated parameter (`sensor=a&sensor=b`): sensor ids may hold commas, so no comma lists. */
export function listParam<T extends z.ZodType<string, string>>(item: T, max: number) {
  return z.array(item).max(max, `at most ${max} values`);
}

/**
 * Parse a query string with a zod object schema. Parameters named in `lists` may repeat;
 * any other one given twice, or one the schema does not know, is a 400 naming it.
 */
export function parseQuery<S extends z.ZodObject>(
  schema: S,
  params: URLSearchParams,
  lists: readonly string[] = [],
): z.output<S> {
  const raw: Record<string, string | string[]> = {};
  const problems: Problem[] = [];
  const known = Object.keys(schema.shape);
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    if (!known.includes(key)) {
      problems.push({ param: key, message: `unknown parameter (known: ${known.join(", ")})` });
    } else if (lists.includes(key)) {
      raw[key] = all;
    } else if (all.length > 1) {
      problems.push({ param: key, message: "given more than once" });
    } else {
      raw[key] = all[0]!;
    }
  }
  if (problems.length > 0) throw ApiError.badRequest(problems);
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw ApiError.badRequest(
      r.error.issues.map((i) => ({
        param: String(i.path[0] ?? "?"),
        message: i.path.length > 0 && !(String(i.path[0]) in raw) ? "required" : i.message,
      })),
    );
  }
  return r.data;
}
