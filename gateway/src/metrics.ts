import { Counter, Gauge, createRegistry, type Registry } from "@datalab/shared";

export interface GatewayMetrics {
  registry: Registry;
  messagesReceived: Counter<"source">;
  readingsCommitted: Counter;
  quarantined: Counter<"reason" | "source">;
  dropped: Counter<"reason">;
  forwardedReadings: Counter;
  forwardedBatches: Counter;
  uplinkErrors: Counter<"kind">;
  outboxReadings: Gauge;
  outboxBytes: Gauge;
  outboxOldestAge: Gauge;
  uplinkConnected: Gauge;
  corruptDatabases: Counter;
}

export function createGatewayMetrics(withDefaults = true): GatewayMetrics {
  const registry = createRegistry("gateway", withDefaults);
  const r = [registry];
  return {
    registry,
    messagesReceived: new Counter({ name: "datalab_gateway_messages_received_total", help: "Messages received from sources", labelNames: ["source"], registers: r }),
    readingsCommitted: new Counter({ name: "datalab_gateway_readings_committed_total", help: "Readings committed to the SQLite outbox", registers: r }),
    quarantined: new Counter({ name: "datalab_gateway_quarantined_total", help: "Messages quarantined, by reason", labelNames: ["reason", "source"], registers: r }),
    dropped: new Counter({ name: "datalab_gateway_dropped_readings_total", help: "Readings dropped from the outbox, by reason", labelNames: ["reason"], registers: r }),
    forwardedReadings: new Counter({ name: "datalab_gateway_forwarded_readings_total", help: "Readings acknowledged by JetStream", registers: r }),
    forwardedBatches: new Counter({ name: "datalab_gateway_forwarded_batches_total", help: "Batches acknowledged by JetStream", registers: r }),
    uplinkErrors: new Counter({ name: "datalab_gateway_uplink_errors_total", help: "Failed publish attempts, by kind", labelNames: ["kind"], registers: r }),
    outboxReadings: new Gauge({ name: "datalab_gateway_outbox_readings", help: "Readings in the outbox, not yet acknowledged", registers: r }),
    outboxBytes: new Gauge({ name: "datalab_gateway_outbox_bytes", help: "Bytes of wire messages in the outbox", registers: r }),
    outboxOldestAge: new Gauge({ name: "datalab_gateway_outbox_oldest_age_seconds", help: "Age of the oldest unsent reading", registers: r }),
    uplinkConnected: new Gauge({ name: "datalab_gateway_uplink_connected", help: "1 when the uplink is connected", registers: r }),
    corruptDatabases: new Counter({ name: "datalab_gateway_corrupt_databases_total", help: "Outbox files found unreadable at start and moved aside", registers: r }),
  };
}
