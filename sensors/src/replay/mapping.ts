import { ConfigError } from "@datalab/shared";
import { GENERIC_UNITS, parseDecimal } from "../protocols/index";
import { metricNameProblem, sensorIdProblem } from "../protocols/common/names";
import type { Measurement } from "../simulate/samples/kinds";
import type { FormatDefaults, TableRow } from "./formats/types";
import { problem, type LineProblem } from "./formats/problems";
import { parseTime } from "./time";

/** One column to publish: `--metric COLUMN=NAME[:UNIT]`. */
export interface MetricMapping {
  column: string;
  metric: string;
  unit?: string;
}

export interface MappingOptions {
  /** Column holding the sensor id; without one every row is `defaultSensorId`. */
  sensor?: string;
  sensorPrefix?: string;
  defaultSensorId: string;
  /** Column(s) holding the time, joined with a space (the Intel Lab's `date time`). */
  time?: readonly string[];
  /**
   * Without a time column: each sensor's k-th row (0-based, its bad rows included) is at
   * startMs + k × intervalMs, so the sensors of one file overlap in time as they ran. Without a
   * sensor column every row is one sensor's, and k counts the file's data rows.
   */
  intervalMs?: number;
  startMs?: number;
  /** Zone of zone-less times, minutes east of UTC. */
  zoneOffsetMinutes?: number;
  /** Default: every column but the sensor and time ones, named as the column. */
  metrics?: readonly MetricMapping[];
}

export interface ReplayRecord {
  line: number;
  sensorId: string;
  ts: number;
  metrics: Measurement[];
}

/**
 * Metric names the gateway's JSON decoder reads as the sensor id, the time or descriptive
 * metadata: a column published under one of these would be taken for something else.
 */
const RESERVED_METRICS = new Set([
  "sensor",
  "sensorId",
  "sensor_id",
  "id",
  "device",
  "name",
  "ts",
  "time",
  "timestamp",
  "units",
  "unit",
  "type",
  "model",
  "location",
  "room",
  "fw",
  "firmware",
  "meta",
]);

/** `COLUMN`, `COLUMN=NAME` or `COLUMN=NAME:UNIT` (NAME may be empty: `temp=:Cel`). */
export function parseMetricSpec(spec: string): MetricMapping | { problem: string } {
  const eq = spec.indexOf("=");
  const column = (eq === -1 ? spec : spec.slice(0, eq)).trim();
  if (column === "") return { problem: `--metric ${JSON.stringify(spec)}: no column; expected COLUMN=NAME[:UNIT]` };
  if (eq === -1) return { column, metric: column };
  const rest = spec.slice(eq + 1);
  const colon = rest.indexOf(":");
  const metric = (colon === -1 ? rest : rest.slice(0, colon)).trim() || column;
  const unit = colon === -1 ? undefined : rest.slice(colon + 1).trim();
  if (unit === "") return { problem: `--metric ${JSON.stringify(spec)}: empty unit after ":"` };
  return unit === undefined ? { column, metric } : { column, metric, unit };
}

/**
 * Turns a table row into a record: sensor id, time, and the mapped metric values. Built once
 * the columns are known; every column it names must exist (a ConfigError listing them all
 * otherwise), since a misspelt column would skip every row for the same reason.
 */
export class RowMapper {
  private readonly sensorIndex: number | undefined;
  private readonly timeIndexes: number[] | undefined;
  private readonly metrics: { index: number; column: string; metric: string; unit?: string }[];
  private readonly prefix: string;
  private rowIndex = 0;
  /** Rows seen per sensor id, for --interval: one entry per distinct sensor of the file. */
  private readonly sensorRows = new Map<string, number>();

  constructor(
    readonly columns: readonly string[],
    private readonly o: MappingOptions,
    defaults: FormatDefaults = {},
  ) {
    const problems: string[] = [];
    const indexOf = (c: string, what: string): number => {
      const i = columns.indexOf(c);
      if (i === -1) problems.push(`${what}: no column "${c}" (columns: ${columns.join(", ")})`);
      return i;
    };
    const sensor = o.sensor ?? defaults.sensor;
    this.sensorIndex = sensor === undefined ? undefined : indexOf(sensor, "--sensor");
    const time = o.time ?? (o.intervalMs === undefined ? defaults.time : undefined);
    this.timeIndexes = time?.map((c) => indexOf(c, "--time"));
    if (time === undefined && o.intervalMs === undefined)
      problems.push("no time column: give --time COLUMN, or --interval SECONDS to space rows evenly");
    if (o.intervalMs !== undefined && !(o.intervalMs >= 0))
      problems.push(`--interval must be ≥ 0, got ${o.intervalMs / 1000}`);
    const used = new Set([sensor, ...(time ?? [])]);
    const mapped: readonly MetricMapping[] =
      o.metrics ?? defaults.metrics ?? columns.filter((c) => !used.has(c)).map((c) => ({ column: c, metric: c }));
    if (mapped.length === 0) problems.push("no metric columns: give --metric COLUMN=NAME[:UNIT]");
    const seen = new Set<string>();
    this.metrics = mapped.map((m) => {
      const nameProblem = metricNameProblem(m.metric);
      if (nameProblem) problems.push(`--metric ${m.column}: ${nameProblem}`);
      if (RESERVED_METRICS.has(m.metric))
        problems.push(
          `--metric ${m.column}=${m.metric}: "${m.metric}" would be read as the sensor id, the time or metadata; ` +
            "choose another name",
        );
      if (seen.has(m.metric)) problems.push(`--metric: metric "${m.metric}" is mapped twice`);
      seen.add(m.metric);
      const unit = m.unit ?? GENERIC_UNITS[m.metric];
      return {
        index: indexOf(m.column, "--metric"),
        column: m.column,
        metric: m.metric,
        ...(unit === undefined ? {} : { unit }),
      };
    });
    if (problems.length > 0) throw new ConfigError(problems);
    this.prefix = o.sensorPrefix ?? "";
  }

  /**
   * `index`: the row's 0-based place among the file's data rows, bad ones included (default:
   * rows seen here); the --interval slot when there is no sensor column.
   */
  toRecord(row: TableRow, index?: number): ReplayRecord | LineProblem {
    const k = index ?? this.rowIndex;
    this.rowIndex += 1;
    const { line, cells } = row;
    let sensorId = this.o.defaultSensorId;
    if (this.sensorIndex !== undefined) {
      const raw = (cells[this.sensorIndex] ?? "").trim();
      if (raw === "") return problem(line, "missing_sensor", `column "${this.columns[this.sensorIndex]}" is empty`);
      sensorId = this.prefix + raw;
    }
    const idProblem = sensorIdProblem(sensorId);
    if (idProblem) return problem(line, "bad_sensor_id", idProblem);

    let ts: number;
    if (this.timeIndexes) {
      const text = this.timeIndexes.map((i) => cells[i] ?? "").join(" ");
      const parsed = parseTime(text, this.o.zoneOffsetMinutes);
      if (parsed === undefined)
        return problem(
          line,
          "bad_time",
          `${JSON.stringify(text.slice(0, 60))} is not a time between 1970 and 2200 ` +
            "(epoch seconds/ms or YYYY-MM-DD[ HH:MM[:SS[.fff]]][zone])",
        );
      ts = parsed;
    } else {
      // Counted before the values are read, so a sensor's bad row keeps its slot.
      let slot = k;
      if (this.sensorIndex !== undefined) {
        slot = this.sensorRows.get(sensorId) ?? 0;
        this.sensorRows.set(sensorId, slot + 1);
      }
      ts = (this.o.startMs ?? 0) + slot * (this.o.intervalMs ?? 0);
    }

    const metrics: Measurement[] = [];
    for (const m of this.metrics) {
      const text = cells[m.index] ?? "";
      if (text.trim() === "") continue;
      const value = parseDecimal(text);
      if (value === undefined)
        return problem(line, "bad_value", `column "${m.column}": ${JSON.stringify(text.slice(0, 40))} is not a number`);
      metrics.push(m.unit === undefined ? { metric: m.metric, value } : { metric: m.metric, value, unit: m.unit });
    }
    if (metrics.length === 0)
      return problem(line, "no_values", `no values in ${this.metrics.map((m) => m.column).join(", ")}`);
    return { line, sensorId, ts, metrics };
  }
}
