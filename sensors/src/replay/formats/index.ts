import { CsvFormat, type CsvOptions } from "./csv";
import { IntelLabFormat } from "./intel-lab";
import type { TableFormat } from "./types";

export { CsvFormat, splitCsvLine, type CsvOptions } from "./csv";
export { IntelLabFormat, INTEL_LAB_COLUMNS } from "./intel-lab";
export type { FormatDefaults, ParsedLine, TableFormat, TableRow } from "./types";

export const REPLAY_FORMATS = ["intel-lab", "csv"] as const;
export type ReplayFormatName = (typeof REPLAY_FORMATS)[number];

export function createFormat(name: ReplayFormatName, csv: CsvOptions = {}): TableFormat {
  return name === "csv" ? new CsvFormat(csv) : new IntelLabFormat();
}

/** `.csv` files are CSV; anything else is taken for the Intel Lab's space-separated format. */
export function formatForFile(path: string): ReplayFormatName {
  return /\.csv$/i.test(path) ? "csv" : "intel-lab";
}
