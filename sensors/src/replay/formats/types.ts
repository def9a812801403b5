import type { LineProblem } from "./problems";

/** One data line of a recorded table: its 1-based line number in the file and its cells. */
export interface TableRow {
  line: number;
  cells: readonly string[];
}

export type ParsedLine =
  | { kind: "row"; row: TableRow }
  | { kind: "header"; columns: readonly string[] }
  | { kind: "problem"; problem: LineProblem }
  | { kind: "blank" };

/** The column mapping a format implies when the command line gives none. */
export interface FormatDefaults {
  sensor?: string;
  /** Columns whose cells, joined with a space, make the timestamp. */
  time?: readonly string[];
  metrics?: readonly { column: string; metric: string; unit?: string }[];
}

/**
 * A line-oriented table format. `columns` is known from the start (fixed formats) or from the
 * header line (CSV), which `parseLine` reports as `header`.
 */
export interface TableFormat {
  readonly name: string;
  readonly columns: readonly string[] | undefined;
  readonly defaults: FormatDefaults;
  parseLine(text: string, line: number): ParsedLine;
}
