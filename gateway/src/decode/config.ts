import { z } from "zod";
import { type ConfiguredUnit, UnitConfig } from "@datalab/sensors";

/**
 * `DATALAB_UNITS` / `units`: the unit of metrics whose source states none, as
 * `metric=unit` or `sensor-pattern/metric=unit` (`*` matches any run of characters), e.g.
 * `pressure=hPa,battery=%EL,outdoor-*\/temperature=F`; in the config file also an object
 * `{"pressure": "hPa", "outdoor-*\/temperature": "F"}`. Units must be in the table of
 * docs/radios.md, so a typo is an error at start rather than a unit nobody can convert.
 */
export const unitsSchema = z
  .union([z.string(), z.record(z.string(), z.string())], {
    error: "expected metric=unit pairs, comma-separated, or an object",
  })
  .default("")
  .transform((v, ctx) => {
    const pairs: [string, string][] =
      typeof v === "string"
        ? v
            .split(",")
            .map((x) => x.trim())
            .filter(Boolean)
            .map((x) => {
              const eq = x.lastIndexOf("=");
              return eq < 0 ? [x, ""] : [x.slice(0, eq).trim(), x.slice(eq + 1).trim()];
            })
        : Object.entries(v).map(([k, u]) => [k.trim(), u.trim()]);
    const entries: ConfiguredUnit[] = [];
    const problems: string[] = [];
    for (const [key, unit] of pairs) {
      const slash = key.lastIndexOf("/");
      const metric = slash < 0 ? key : key.slice(slash + 1);
      const sensor = slash < 0 ? undefined : key.slice(0, slash);
      if (metric === "" || unit === "" || sensor === "") {
        problems.push(`"${key}${unit ? `=${unit}` : ""}": expected metric=unit or sensor-pattern/metric=unit`);
        continue;
      }
      entries.push(sensor === undefined ? { metric, unit } : { metric, sensor, unit });
    }
    problems.push(...UnitConfig.problems(entries));
    if (problems.length > 0) {
      ctx.addIssue({ code: "custom", message: problems.join("; ") });
      return z.NEVER;
    }
    return new UnitConfig(entries);
  });
