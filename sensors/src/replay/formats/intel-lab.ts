import { problem } from "./problems";
import type { ParsedLine, TableFormat } from "./types";

/**
 * The Intel Berkeley Research Lab `data.txt` (http://db.csail.mit.edu/labdata/labdata.html):
 * `date time epoch moteid temperature humidity light voltage`, space separated, no header, e.g.
 * `2004-03-31 03:38:15.757551 2 1 122.153 -3.91901 11.04 2.03397`.
 * `epoch` is the motes' sequence number (one per 31 s round), not a Unix time. Some rows of the
 * real file end early (no light or voltage): the missing trailing values are simply absent.
 * Units per the data set's page: °C, % (temperature-corrected RH), lux, volts.
 */
export const INTEL_LAB_COLUMNS = [
  "date",
  "time",
  "epoch",
  "moteid",
  "temperature",
  "humidity",
  "light",
  "voltage",
] as const;
/** date, time, epoch and mote id: without them a row has no sensor or no time. */
const REQUIRED_FIELDS = 4;

export class IntelLabFormat implements TableFormat {
  readonly name = "intel-lab";
  readonly columns = INTEL_LAB_COLUMNS;
  readonly defaults = {
    sensor: "moteid",
    time: ["date", "time"],
    metrics: [
      { column: "temperature", metric: "temperature", unit: "Cel" },
      { column: "humidity", metric: "humidity", unit: "%RH" },
      { column: "light", metric: "light", unit: "lx" },
      { column: "voltage", metric: "voltage", unit: "V" },
    ],
  };

  parseLine(text: string, line: number): ParsedLine {
    const trimmed = text.trim();
    if (trimmed === "") return { kind: "blank" };
    const fields = trimmed.split(/\s+/);
    if (fields.length < REQUIRED_FIELDS || fields.length > INTEL_LAB_COLUMNS.length) {
      return {
        kind: "problem",
        problem: problem(
          line,
          "field_count",
          `expected ${REQUIRED_FIELDS}..${INTEL_LAB_COLUMNS.length} space-separated fields ` +
            `(${INTEL_LAB_COLUMNS.join(" ")}), found ${fields.length}`,
        ),
      };
    }
    while (fields.length < INTEL_LAB_COLUMNS.length) fields.push("");
    return { kind: "row", row: { line, cells: fields } };
  }
}
