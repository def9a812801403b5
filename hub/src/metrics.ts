import { Counter, createRegistry, type Registry } from "@datalab/shared";

export interface HubMetrics {
  registry: Registry;
  readingsWritten: Counter<"sink">;
  batchesWritten: Counter<"sink">;
  writeErrors: Counter<"sink">;
  deadLetters: Counter<"sink" | "reason">;
}

export function createHubMetrics(withDefaults = true): HubMetrics {
  const registry = createRegistry("hub", withDefaults);
  const r = [registry];
  return {
    registry,
    readingsWritten: new Counter({ name: "datalab_hub_readings_written_total", help: "Readings written, by sink (redeliveries included)", labelNames: ["sink"], registers: r }),
    batchesWritten: new Counter({ name: "datalab_hub_batches_written_total", help: "Batches committed and acked, by sink", labelNames: ["sink"], registers: r }),
    writeErrors: new Counter({ name: "datalab_hub_write_errors_total", help: "Failed batch writes, by sink", labelNames: ["sink"], registers: r }),
    deadLetters: new Counter({ name: "datalab_hub_dead_letters_total", help: "Batches sent to the dead-letter subject", labelNames: ["sink", "reason"], registers: r }),
  };
}
