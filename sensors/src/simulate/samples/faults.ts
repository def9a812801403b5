import type { SimulatedSample } from "./kinds";
import { Prng } from "./prng";

/**
 * What goes wrong between a sensor and the gateway: lost transmissions, retransmissions the
 * gateway hears twice, messages overtaken by the next one (a mesh hop or a retry queue), and
 * payloads garbled on the way. Rates are probabilities per reading cycle, 0..1.
 */
export interface FaultOptions {
  dropoutRate?: number;
  duplicateRate?: number;
  reorderRate?: number;
  malformedRate?: number;
}

/** How a payload is damaged: `variant` picks one of the output's ways, `at` (0..1) where to cut. */
export interface MalformedSpec {
  variant: number;
  at: number;
}

export interface Emission {
  sample: SimulatedSample;
  malformed?: MalformedSpec;
  /** A second copy of the message before it. */
  duplicate?: true;
  /** Held back and sent after the message that followed it. */
  reordered?: true;
}

export interface FaultCounts {
  cycles: number;
  /** Silent because the battery was flat. */
  batteryFlat: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  malformed: number;
}

export const FAULT_SEED_SALT = 0x5bd1e995;

/**
 * Applies the faults to the stream of reading cycles. It has its own PRNG (the seed salted),
 * and draws the same four numbers every cycle, so the values a sensor measures do not depend
 * on the fault settings, and one fault's rate does not change where another strikes.
 */
export class FaultInjector {
  readonly counts: FaultCounts = { cycles: 0, batteryFlat: 0, dropped: 0, duplicated: 0, reordered: 0, malformed: 0 };
  private readonly rng: Prng;
  private held: Emission[] | undefined;

  constructor(
    seed: number,
    private readonly o: FaultOptions = {},
  ) {
    this.rng = new Prng((seed ^ FAULT_SEED_SALT) >>> 0);
  }

  /** The emissions for one cycle: none, one, or several (a duplicate, a held-back message released). */
  apply(sample: SimulatedSample): Emission[] {
    const r = this.rng;
    const uDrop = r.next();
    const uMalformed = r.next();
    const variant = r.next();
    const at = r.next();
    const uDuplicate = r.next();
    const uReorder = r.next();
    this.counts.cycles += 1;
    if (sample.silent) {
      this.counts.batteryFlat += 1;
      return [];
    }
    if (uDrop < (this.o.dropoutRate ?? 0)) {
      this.counts.dropped += 1;
      return [];
    }
    const e: Emission = { sample };
    if (uMalformed < (this.o.malformedRate ?? 0)) {
      e.malformed = { variant: Math.floor(variant * 1e6), at };
      this.counts.malformed += 1;
    }
    const out: Emission[] = [e];
    if (uDuplicate < (this.o.duplicateRate ?? 0)) {
      out.push({ ...e, duplicate: true });
      this.counts.duplicated += 1;
    }
    if (this.held) {
      const late = this.held;
      this.held = undefined;
      return [...out, ...late];
    }
    if (uReorder < (this.o.reorderRate ?? 0)) {
      this.held = out.map((x) => ({ ...x, reordered: true as const }));
      this.counts.reordered += 1;
      return [];
    }
    return out;
  }

  /** A message still held back at the end of a run is sent late rather than lost. */
  flush(): Emission[] {
    const late = this.held ?? [];
    this.held = undefined;
    return late;
  }
}
