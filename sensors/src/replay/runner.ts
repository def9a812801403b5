import { stat } from "node:fs/promises";
import { basename, extname } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { ConfigError } from "@datalab/shared";
import { EncodeError } from "../protocols/index";
import type { MessageEncoder, Output } from "../simulate/outputs/types";
import { Pacer, type Speed } from "../simulate/pacer";
import { createFormat, type CsvOptions, type ReplayFormatName } from "./formats/index";
import { LineReader } from "./lines";
import { RowMapper, type MappingOptions, type ReplayRecord } from "./mapping";
import { problem, type LineProblem } from "./formats/problems";
import { ReplaySummary } from "./summary";

export interface ReplayOptions {
  file: string;
  format: ReplayFormatName;
  csv?: CsvOptions;
  /** `defaultSensorId` defaults to the file's name without its extension. */
  mapping: Omit<MappingOptions, "defaultSensorId"> & { defaultSensorId?: string };
  /** 1: the recorded pace; N: N times faster; "max": as fast as the output takes (default 1). */
  speed?: Speed;
  /** Stop after this many data rows. */
  limit?: number;
  signal?: AbortSignal;
  /** Flow control: awaited before each row is sent, with the messages and readings published so far. */
  admit?: (messages: number, readings: number) => Promise<void>;
  /** Each skipped line, as it is found. */
  onProblem?: (p: LineProblem) => void;
  /** Every 1,024 rows and at the end; `fraction` is the share of the file read. */
  onProgress?: (p: { read: number; published: number; skipped: number; fraction: number; elapsedMs: number }) => void;
}

/**
 * Replays a recorded data set into an output: lines → rows (format) → records (mapping) →
 * paced by their own timestamps → encoded → sent, one row at a time. Each row is one message
 * (for MQTT, one multi-metric message on `<topic root>/<sensor id>` carrying the row's
 * original time). Bad lines are counted and reported, never fatal; a misconfigured mapping
 * (an unknown column) is, before anything is sent.
 */
export async function replayFile(o: ReplayOptions, encoder: MessageEncoder, output: Output): Promise<ReplaySummary> {
  const size = await stat(o.file).then(
    (s) => s.size,
    (err: Error) => {
      throw new ConfigError([`cannot read ${o.file}: ${err.message}`]);
    },
  );
  const format = createFormat(o.format, o.csv);
  const mapping: MappingOptions = { defaultSensorId: basename(o.file, extname(o.file)), ...o.mapping };
  const reader = new LineReader(o.file);
  const pacer = new Pacer(o.speed ?? 1);
  const summary = new ReplaySummary();
  const started = performance.now();
  let mapper: RowMapper | undefined;
  let firstTs: number | undefined;

  const skip = (p: LineProblem): void => {
    summary.skip(p);
    o.onProblem?.(p);
  };
  const progress = (): void =>
    o.onProgress?.({
      read: summary.read,
      published: summary.published,
      skipped: summary.skippedTotal,
      fraction: size > 0 ? Math.min(1, reader.bytesRead / size) : 1,
      elapsedMs: performance.now() - started,
    });

  const send = async (rec: ReplayRecord): Promise<void> => {
    firstTs ??= rec.ts;
    const due = pacer.wait(rec.ts - firstTs, o.signal);
    if (due) await due;
    if (o.signal?.aborted) return;
    let messages: ReturnType<typeof encoder.encode>;
    try {
      messages = encoder.encode({ sensorId: rec.sensorId, ts: rec.ts, metrics: rec.metrics });
    } catch (err) {
      if (!(err instanceof EncodeError)) throw err;
      skip(problem(rec.line, "not_encodable", err.message));
      return;
    }
    if (o.admit) await o.admit(summary.published, summary.readings);
    for (const m of messages) {
      const full = output.send(m);
      if (full) await full;
    }
    summary.published += 1;
    summary.readings += rec.metrics.length;
  };

  for await (const { line, text } of reader.lines()) {
    if (o.signal?.aborted) {
      summary.stopped = true;
      break;
    }
    if (o.limit !== undefined && summary.read >= o.limit) break;
    if (text === undefined) {
      summary.read += 1;
      skip(problem(line, "line_too_long", "line longer than 64 KiB"));
      continue;
    }
    const parsed = format.parseLine(text, line);
    if (parsed.kind === "blank" || parsed.kind === "header") continue;
    summary.read += 1;
    if (parsed.kind === "problem") {
      skip(parsed.problem);
    } else {
      mapper ??= new RowMapper(format.columns ?? [], mapping, format.defaults);
      // Counted from the data rows read, so a bad line keeps its slot in the --interval spacing.
      const rec = mapper.toRecord(parsed.row, summary.read - 1);
      if ("reason" in rec) skip(rec);
      else await send(rec);
    }
    if ((summary.read & 1023) === 0) {
      progress();
      await yieldToLoop();
    }
  }
  if (o.signal?.aborted) summary.stopped = true;
  summary.elapsedMs = performance.now() - started;
  progress();
  return summary;
}
