import { setImmediate as yieldToLoop } from "node:timers/promises";
import { FaultInjector, type Emission, type FaultCounts, type FaultOptions } from "./samples/faults";
import { sampleToMessage, type SensorKind } from "./samples/kinds";
import type { MessageEncoder, Output } from "./outputs/types";
import { Pacer, type Speed } from "./pacer";
import { seedOf } from "./samples/prng";
import { Simulator, type SimulatorOptions } from "./simulator";

export interface RunSimulationOptions extends SimulatorOptions, FaultOptions {
  /** Reading cycles to run (default: until aborted). */
  count?: number;
  /** 1: sensor time runs with the wall clock; N: N times faster; "max": as fast as the output takes. */
  speed?: Speed;
  signal?: AbortSignal;
  /** Called every 1,024 cycles and at the end. */
  onProgress?: (s: SimulationStats) => void;
}

export interface SimulationStats extends FaultCounts {
  /** Messages handed to the output (duplicates included, dropped and silent ones not). */
  sent: number;
  elapsedMs: number;
}

/**
 * Runs the simulator into an output: model → faults → encoder → output, one reading cycle at a
 * time, paced by sensor time (see Pacer). Nothing is buffered here beyond one cycle (plus one
 * held back by the reorder fault); the output's backpressure is what bounds memory.
 */
export async function runSimulation(
  o: RunSimulationOptions,
  encoder: MessageEncoder,
  output: Output,
): Promise<SimulationStats> {
  const sim = new Simulator(o);
  const faults = new FaultInjector(seedOf(o.seed), o);
  const pacer = new Pacer(o.speed ?? 1);
  const stepMs = 1000 / o.rate;
  const total = o.count ?? Number.POSITIVE_INFINITY;
  const started = performance.now();
  let sent = 0;
  const stats = (): SimulationStats => ({ ...faults.counts, sent, elapsedMs: performance.now() - started });

  const emit = async (list: Emission[], kinds: readonly SensorKind[]): Promise<void> => {
    for (const e of list) {
      for (const m of encoder.encode(sampleToMessage(e.sample, kinds), e.malformed)) {
        const full = output.send(m);
        sent += 1;
        if (full) await full;
      }
    }
  };

  for (let i = 0; i < total; i++) {
    const due = pacer.wait(i * stepMs, o.signal);
    if (due) await due;
    if (o.signal?.aborted) break;
    const list = faults.apply(sim.next());
    if (list.length > 0) await emit(list, sim.kinds);
    if ((i & 1023) === 1023) {
      o.onProgress?.(stats());
      // Let signals and socket events in even when nothing applies backpressure (all dropped, say).
      await yieldToLoop();
    }
  }
  await emit(faults.flush(), sim.kinds);
  const s = stats();
  o.onProgress?.(s);
  return s;
}
