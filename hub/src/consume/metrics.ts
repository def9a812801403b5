import { Counter, createRegistry, Gauge, Histogram, type Registry } from "@datalab/shared";

export interface HubMetrics {
  registry: Registry;
  readingsWritten: Counter<"sink">;
  duplicates: Counter<"sink">;
  folded: Counter<"gateway">;
  batchesWritten: Counter<"sink">;
  writeErrors: Counter<"sink" | "kind">;
  deadLetters: Counter<"sink" | "reason">;
  sinkPaused: Gauge<"sink">;
  writeSeconds: Histogram<"sink">;
}

export function createHubMetrics(withDefaults = true): HubMetrics {
  const registry = createRegistry("hub", withDefaults);
  const r = [registry];
  return {
    registry,
    readingsWritten: new Counter({
      name: "datalab_hub_readings_written_total",
      help: "Readings in batches committed and acked, by sink (redeliveries included)",
      labelNames: ["sink"],
      registers: r,
    }),
    duplicates: new Counter({
      name: "datalab_hub_duplicates_total",
      help:
        "Rows (Postgres) or documents (MongoDB) already present when a batch was written: " +
        "redeliveries made harmless",
      labelNames: ["sink"],
      registers: r,
    }),
    folded: new Counter({
      name: "datalab_hub_folded_total",
      help:
        "Readings not stored in Postgres because their measurement already was " +
        "(another gateway heard it, a radio repeated it), by the gateway that sent them",
      labelNames: ["gateway"],
      registers: r,
    }),
    batchesWritten: new Counter({
      name: "datalab_hub_batches_written_total",
      help: "Batches committed and acked, by sink",
      labelNames: ["sink"],
      registers: r,
    }),
    writeErrors: new Counter({
      name: "datalab_hub_write_errors_total",
      help:
        "Failed batch writes, by sink and kind " +
        "(unavailable: sink down, consumer paused; rejected: counted towards the dead letters)",
      labelNames: ["sink", "kind"],
      registers: r,
    }),
    deadLetters: new Counter({
      name: "datalab_hub_dead_letters_total",
      help: "Batches, or single messages of a batch, sent to the dead-letter subject",
      labelNames: ["sink", "reason"],
      registers: r,
    }),
    sinkPaused: new Gauge({
      name: "datalab_hub_sink_paused",
      help: "1 while a sink's consumer waits for its database to answer",
      labelNames: ["sink"],
      registers: r,
    }),
    writeSeconds: new Histogram({
      name: "datalab_hub_write_seconds",
      help: "Time to write one batch (transaction or insertMany), by sink",
      labelNames: ["sink"],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: r,
    }),
  };
}
