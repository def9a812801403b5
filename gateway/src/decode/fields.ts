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
  readonly #series = new Map<string, { n: number; inc: () => void }>();

  constructor(private readonly counter: Counter<"format" | "field" | "outcome">) {}

  count(format: string, notes: readonly FieldNote[] | undefined): void {
    if (notes === undefined) return;
    for (const note of notes) {
      let key = `${format}:${note.field}:${note.outcome}`;
      let s = this.#series.get(key);
      if (s === undefined) {
        // Field names come from the input: bounded in length as in number.
        const field = this.#series.size < MAX_SERIES ? note.field.slice(0, MAX_FIELD_LENGTH) : "_other";
        key = `${format}:${field}:${note.outcome}`;
        s = this.#series.get(key);
        if (s === undefined) {
          const child = this.counter.labels({ format, field, outcome: note.outcome });
          s = { n: 0, inc: () => child.inc() };
          this.#series.set(key, s);
        }
      }
      s.n += 1;
      s.inc();
    }
  }

  /** `format:field:outcome` -> count since start, e.g. `rtl433:current:unit_unknown`. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, s] of this.#series) out[k] = s.n;
    return out;
  }
}

const byRegistry = new WeakMap<Registry, FieldCounter>();

export function fieldCounter(registry: Registry): FieldCounter {
  let c = byRegistry.get(registry);
  if (c === undefined) {
    const counter =
      (registry.getSingleMetric(NAME) as Counter<"format" | "field" | "outcome"> | undefined) ??
      new Counter({
        name: NAME,
        help: "Numeric fields of received messages not stored with a known unit, by format, field and outcome: unit_unknown (stored, unit unknown), unit_unrecognized (stored with a unit outside the table), metadata and superseded (not stored)",
        labelNames: ["format", "field", "outcome"],
        registers: [registry],
      });
    c = new FieldCounter(counter);
    byRegistry.set(registry, c);
  }
  return c;
}
