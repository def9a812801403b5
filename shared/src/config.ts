import { readFileSync } from "node:fs";
import { z } from "zod";
import { ConfigError } from "./errors";

/**
 * Configuration in one pass: one table of fields gives the type, the default, the
 * environment variable, the validation and the `--help` text. A JSON config file (named by
 * `DATALAB_CONFIG` or passed in) may set any field by its key; the environment wins. Every
 * problem is reported at once, each naming the variable and what was expected.
 */
export interface Field<T> {
  readonly env: string;
  readonly schema: z.ZodType<T>;
  readonly doc: string;
  /** Shown as `(set)` instead of its value in help and logs. */
  readonly secret?: boolean;
}

export function field<T>(env: string, schema: z.ZodType<T>, doc: string, opts: { secret?: boolean } = {}): Field<T> {
  return Object.freeze({ env, schema, doc, ...opts });
}

export type Fields = Record<string, Field<unknown>>;
export type ConfigOf<F extends Fields> = { readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file; defaults to `$DATALAB_CONFIG` when set. */
  file?: string;
  /** Values that win over the file and the environment (command-line flags). */
  overrides?: Record<string, unknown>;
}

export function loadConfig<F extends Fields>(fields: F, opts: LoadOptions = {}): ConfigOf<F> {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let fileValues: Record<string, unknown> = {};
  const file = opts.file ?? env.DATALAB_CONFIG;
  if (file) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        problems.push(`config file ${file}: expected a JSON object`);
      } else {
        fileValues = parsed as Record<string, unknown>;
        for (const key of Object.keys(fileValues)) {
          if (!(key in fields))
            problems.push(`config file ${file}: unknown key "${key}" (known: ${Object.keys(fields).join(", ")})`);
        }
      }
    } catch (err) {
      problems.push(`config file ${file}: ${(err as Error).message}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(fields)) {
    let raw: unknown;
    let origin: string;
    if (opts.overrides && opts.overrides[key] !== undefined) {
      raw = opts.overrides[key];
      origin = `option --${kebab(key)}`;
    } else if (env[f.env] !== undefined && env[f.env] !== "") {
      raw = env[f.env];
      origin = f.env;
    } else if (fileValues[key] !== undefined) {
      raw = fileValues[key];
      origin = `"${key}" in ${file}`;
    } else {
      raw = undefined;
      origin = f.env;
    }
    const r = f.schema.safeParse(raw);
    if (r.success) {
      out[key] = r.data;
    } else {
      const shown = f.secret ? "(secret)" : JSON.stringify(raw);
      const why = r.error.issues.map((i) => i.message).join("; ");
      problems.push(`${origin}=${shown}: ${why} (${f.doc})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as ConfigOf<F>;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Lines for `--help`: each variable, its default and what it is for. */
export function describeConfig(fields: Fields): string {
  const rows = Object.entries(fields).map(([key, f]) => {
    const d = f.schema.safeParse(undefined);
    const def = d.success && d.data !== undefined ? (f.secret ? "(secret)" : JSON.stringify(d.data)) : "(none)";
    return `  ${f.env.padEnd(34)} ${f.doc}\n  ${"".padEnd(34)} config key "${key}", default ${def}`;
  });
  return rows.join("\n");
}

/** Config values that may be printed: secrets shown as "(set)". */
export function redact<F extends Fields>(fields: F, cfg: ConfigOf<F>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fields)) {
    const v = (cfg as Record<string, unknown>)[k];
    out[k] =
      f.secret && v !== undefined
        ? "(set)"
        : typeof v === "string"
          ? redactUrl(v)
          : Array.isArray(v)
            ? v.map((x) => (typeof x === "string" ? redactUrl(x) : x))
            : v;
  }
  return out;
}

/** Hide a password inside a URL (postgres://user:pw@host). */
export function redactUrl(s: string): string {
  return s.replace(/(\/\/[^:/@]+:)[^@/]+@/, "$1***@");
}

// ---- schemas for values that come as strings from the environment ----

export function urlOf(schemes: readonly string[], def?: string) {
  const s = z.string({ error: `expected a URL (${schemes.map((x) => `${x}://`).join(" or ")})` }).refine(
    (v) => {
      try {
        const u = new URL(v);
        return schemes.includes(u.protocol.replace(/:$/, ""));
      } catch {
        return false;
      }
    },
    `expected a URL starting with ${schemes.map((x) => `${x}://`).join(" or ")}`,
  );
  return def === undefined ? s : s.default(def);
}

/** Comma-separated list of server URLs (a NATS cluster's seeds). */
export function urlListOf(schemes: readonly string[], def: string) {
  return z
    .string()
    .default(def)
    .transform((v) =>
      v
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .refine(
      (list) =>
        list.length > 0 &&
        list.every((v) => {
          try {
            return schemes.includes(new URL(v).protocol.replace(/:$/, ""));
          } catch {
            return false;
          }
        }),
      `expected a comma-separated list of URLs starting with ${schemes.map((x) => `${x}://`).join(" or ")}`,
    );
}

export function intIn(min: number, max: number, def?: number) {
  const s = z.coerce
    .number({ error: `expected an integer from ${min} to ${max}` })
    .int(`expected an integer from ${min} to ${max}`)
    .min(min, `expected an integer from ${min} to ${max}`)
    .max(max, `expected an integer from ${min} to ${max}`);
  return def === undefined ? s : s.default(def);
}

export function bool(def: boolean) {
  return z
    .union([z.boolean(), z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"])], {
      error: "expected true or false",
    })
    .default(def)
    .transform((v) => (typeof v === "boolean" ? v : ["true", "1", "yes", "on"].includes(v)));
}

export function stringList(def: readonly string[]) {
  return z
    .union([z.array(z.string()), z.string()], { error: "expected a comma-separated list" })
    .default([...def])
    .transform((v) =>
      Array.isArray(v)
        ? v
        : v
            .split(",")
            .map((x) => x.trim())
            .filter(Boolean),
    );
}
