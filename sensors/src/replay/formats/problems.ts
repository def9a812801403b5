/**
 * Why a line of a recorded data set was skipped. A bad line is never fatal: it is reported
 * with its line number, counted by reason, and the replay goes on.
 */
export type SkipReason =
  /** More or fewer fields than the format or the header says. */
  | "field_count"
  /** A CSV field opened a quote and the line ended inside it. */
  | "unterminated_quote"
  /** Longer than the reader's limit (a binary file, a missing newline). */
  | "line_too_long"
  | "bad_value"
  | "bad_time"
  | "missing_sensor"
  | "bad_sensor_id"
  /** Every metric cell of the row is empty. */
  | "no_values"
  /** The output's protocol cannot carry the row (a metric MySensors has no variable for). */
  | "not_encodable";

export interface LineProblem {
  line: number;
  reason: SkipReason;
  message: string;
}

export function problem(line: number, reason: SkipReason, message: string): LineProblem {
  return { line, reason, message };
}
