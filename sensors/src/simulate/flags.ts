import { ConfigError } from "@datalab/shared";
import { z } from "zod";
import type { Speed } from "./pacer";
import { parseOutputSpec, type OutputSpec } from "./outputs/spec";

/**
 * Command-line values arrive as strings; these schemas give each flag its type, default and
 * check, and `parseFlags` reports every bad flag at once, each by name.
 */
const notANumber = {
  error: (iss: { code?: string }) => (iss.code === "invalid_type" ? "expected a number" : undefined),
};
export const num = (min: number, max = Number.POSITIVE_INFINITY) =>
  z.coerce.number(notANumber).min(min, `expected a number ≥ ${min}`).max(max, `expected a number ≤ ${max}`);
export const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number(notANumber)
    .int("expected a whole number")
    .min(min, `expected a number ≥ ${min}`)
    .max(max, `expected a number ≤ ${max}`);
export const rate01 = num(0, 1).default(0);

export const speed = z
  .string()
  .default("1")
  .transform((v, ctx): Speed => {
    if (v === "max") return "max";
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) ctx.addIssue({ code: "custom", message: 'expected a number > 0 or "max"' });
    return n;
  });

export const isoTime = z.string().transform((v, ctx) => {
  const ms = Date.parse(v);
  if (Number.isNaN(ms) || !/\d{4}-\d{2}-\d{2}/.test(v))
    ctx.addIssue({ code: "custom", message: "expected an ISO 8601 time, e.g. 2026-01-01T00:00:00Z" });
  return ms;
});

export const outputSpec = z
  .string()
  .default("mqtt")
  .transform((v, ctx): OutputSpec => {
    const s = parseOutputSpec(v);
    if ("problem" in s) {
      ctx.addIssue({ code: "custom", message: s.problem });
      return { kind: "mqtt" };
    }
    return s;
  });

/** `exclusive`: pairs of flags that cannot be given together, checked alongside the schema. */
export function parseFlags<S extends z.ZodType>(
  schema: S,
  values: Record<string, unknown>,
  exclusive: readonly [string, string][] = [],
): z.infer<S> {
  const problems: string[] = [];
  for (const [a, b] of exclusive)
    if (values[a] !== undefined && values[b] !== undefined) problems.push(`give --${a} or --${b}, not both`);
  const r = schema.safeParse(values);
  if (r.success && problems.length === 0) return r.data;
  const issues = r.success
    ? []
    : r.error.issues.map((i) => {
        const key = String(i.path[0] ?? "");
        const given = key && values[key] !== undefined ? `=${JSON.stringify(values[key])}` : "";
        return `${key ? `--${key}` : "options"}${given}: ${i.message}`;
      });
  throw new ConfigError([...issues, ...problems]);
}
