import { problem } from "./problems";
import type { ParsedLine, TableFormat } from "./types";

export interface CsvOptions {
  /** Field separator, one character (default ","). */
  delimiter?: string;
  /** No header line: columns are named by position, "1", "2", ... */
  headerless?: boolean;
}

/**
 * CSV (RFC 4180 fields: quotes, doubled quotes inside them, the delimiter inside quotes), one
 * record per line: a quoted field that spans lines is reported as unterminated rather than
 * joined, since a recorded sensor table has no multi-line cells and joining would swallow the
 * lines after a stray quote. The first non-blank line is the header unless `headerless`.
 */
export class CsvFormat implements TableFormat {
  readonly name = "csv";
  readonly defaults = {};
  private cols: string[] | undefined;
  private readonly delimiter: string;

  constructor(private readonly o: CsvOptions = {}) {
    this.delimiter = o.delimiter ?? ",";
    if (this.delimiter.length !== 1 || this.delimiter === '"')
      throw new RangeError(`CSV delimiter must be one character other than '"', got ${JSON.stringify(this.delimiter)}`);
  }

  get columns(): readonly string[] | undefined {
    return this.cols;
  }

  parseLine(text: string, line: number): ParsedLine {
    // A UTF-8 byte order mark is invisible in an editor but part of the first column's name.
    const t = line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    if (t.trim() === "") return { kind: "blank" };
    const cells = splitCsvLine(t, this.delimiter);
    if (cells === undefined)
      return {
        kind: "problem",
        problem: problem(line, "unterminated_quote", "a quoted field is not closed before the end of the line"),
      };
    if (this.cols === undefined) {
      if (!this.o.headerless) {
        this.cols = cells.map((c) => c.trim());
        return { kind: "header", columns: this.cols };
      }
      // Without a header, the first row fixes the number of columns.
      this.cols = cells.map((_, i) => String(i + 1));
    }
    if (cells.length !== this.cols.length) {
      return {
        kind: "problem",
        problem: problem(
          line,
          "field_count",
          `expected ${this.cols.length} fields (${this.cols.join(this.delimiter)}), found ${cells.length}`,
        ),
      };
    }
    return { kind: "row", row: { line, cells } };
  }
}

/** The fields of one CSV line, or undefined when a quoted field is not closed. */
export function splitCsvLine(text: string, delimiter = ","): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = "";
      i += 1;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q === -1) return undefined;
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      // Text between the closing quote and the delimiter is kept, as spreadsheets do.
      const end = text.indexOf(delimiter, i);
      out.push(value + text.slice(i, end === -1 ? text.length : end));
      if (end === -1) return out;
      i = end + 1;
    } else {
      const end = text.indexOf(delimiter, i);
      if (end === -1) {
        out.push(text.slice(i));
        return out;
      }
      out.push(text.slice(i, end));
      i = end + 1;
    }
  }
}
