import { readFileSync } from "node:fs";
import { DecodedReading } from "@datalab/shared";
import { expect } from "vitest";
import type { DecodeResult, IncrementalParser, ParseResult } from "../../src/protocols/index";

/** Fixtures live in ../shared beside the repository (CI clones it there too). */
export function fixture(path: string): Buffer {
  return readFileSync(new URL(`../../../../shared/fixtures/${path}`, import.meta.url));
}

export function fixtureLines(path: string): string[] {
  return fixture(path)
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
}

/** Every reading a decoder emits must pass the schema the hub will apply. */
export function expectValidReadings(result: DecodeResult): void {
  if (result.kind !== "readings") return;
  for (const reading of result.readings) {
    const parsed = DecodedReading.safeParse(reading);
    expect(parsed.success, `${JSON.stringify(reading)}: ${parsed.error?.message ?? ""}`).toBe(true);
  }
}

export function readingsOf(result: DecodeResult) {
  if (result.kind !== "readings") throw new Error(`expected readings, got ${JSON.stringify(result)}`);
  return result.readings;
}

/** metric -> value, for compact assertions on one sensor's readings. */
export function valuesByMetric(result: DecodeResult): Record<string, number> {
  return Object.fromEntries(readingsOf(result).map((r) => [r.metric, r.value]));
}

export function unitsByMetric(result: DecodeResult): Record<string, string | undefined> {
  return Object.fromEntries(readingsOf(result).map((r) => [r.metric, r.unit]));
}

/** Feeds chunks then flushes, collecting every result. */
export function feed<F>(parser: IncrementalParser<F>, chunks: Iterable<Uint8Array>): ParseResult<F>[] {
  const out: ParseResult<F>[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  out.push(...parser.flush());
  return out;
}

/** Splits bytes at the given (sorted, in-range) cut points. */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    out.push(Buffer.from(bytes.subarray(start, cut)));
    start = cut;
  }
  out.push(Buffer.from(bytes.subarray(start)));
  return out;
}

export function framesOf<F>(results: ParseResult<F>[]): F[] {
  return results.flatMap((r) => (r.kind === "frame" ? [r.frame] : []));
}

export function errorsOf<F>(results: ParseResult<F>[]) {
  return results.flatMap((r) => (r.kind === "error" ? [r] : []));
}

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ""), "hex");
}
