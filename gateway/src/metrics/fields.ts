import { Counter, type Registry } from "@datalab/shared";
import type { FieldNote } from "@datalab/sensors";

const NAME = "datalab_gateway_fields_total";

/**
 * Distinct (format, field, outcome) series kept at most. Field names come from the input,
 * so a sender inventing keys could otherwise grow the metrics without bound; beyond this,
 * fields are counted under `_other`.
 */
const MAX_SERIES = 256;
const MAX_FIELD_LENGTH = 64;

/**
 * Numeric fields that were not stored with a known unit, counted by format, field and
 * outcome (unit_unknown, unit_unrecognized, metadata, superseded): nothing a message carried
 * leaves without a trace. One per registry, shared by the MQTT decoders and the radios;
 * read by the status (`pnpm gateway status`) and the health report.
 */
export class FieldCounter {
  /** format -> outcome -> field -> series: no key string built per note on the hot path. */
  readonly #series = new Map<string, Map<string, Map<string, { n: number }>>>();
  #size = 0;

  count(format: string, notes: readonly FieldNote[] | undefined): void {
    if (notes === undefined) return;
    let byOutcome = this.#series.get(format);
    if (byOutcome === undefined) this.#series.set(format, (byOutcome = new Map()));
    for (const note of notes) {
      let byField = byOutcome.get(note.outcome);
      if (byField === undefined) byOutcome.set(note.outcome, (byField = new Map()));
      const s = byField.get(note.field) ?? this.#add(note, byField);
      s.n += 1;
    }
  }

  #add(note: FieldNote, byField: Map<string, { n: number }>): { n: number } {
    // Field names come from the input: bounded in number and in length; the rest is `_other`.
    const field = this.#size < MAX_SERIES ? note.field.slice(0, MAX_FIELD_LENGTH) : "_other";
    let s = byField.get(field);
    if (s === undefined) {
      s = { n: 0 };
      byField.set(field, s);
      this.#size += 1;
    }
    return s;
  }

  /** Every series with its labels, for the Prometheus counter (read at scrape time, not per message). */
  *series(): Generator<[{ format: string; field: string; outcome: string }, number]> {
    for (const [format, byOutcome] of this.#series) {
      for (const [outcome, byField] of byOutcome)
        for (const [field, s] of byField) yield [{ format, field, outcome }, s.n];
    }
  }

  /** `format:field:outcome` -> count since start, e.g. `rtl433:current:unit_unknown`. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [format, byOutcome] of this.#series) {
      for (const [outcome, byField] of byOutcome)
        for (const [field, s] of byField) out[`${format}:${field}:${outcome}`] = s.n;
    }
    return out;
  }
}

const byRegistry = new WeakMap<Registry, FieldCounter>();

export function fieldCounter(registry: Registry): FieldCounter {
  let c = byRegistry.get(registry);
  if (c === undefined) {
    const counter = new FieldCounter();
    c = counter;
    if (registry.getSingleMetric(NAME) === undefined) {
      new Counter({
        name: NAME,
        help:
          "Numeric fields of received messages not stored with a known unit, by format, field and outcome: " +
          "unit_unknown (stored, unit unknown), unit_unrecognized (stored with a unit outside the table), " +
          "metadata and superseded (not stored)",
        labelNames: ["format", "field", "outcome"],
        registers: [registry],
        // Counted in plain numbers per message; handed to prom-client only when scraped.
        collect() {
          this.reset();
          for (const [labels, n] of counter.series()) this.inc(labels, n);
        },
      });
    }
    byRegistry.set(registry, c);
  }
  return c;
}
