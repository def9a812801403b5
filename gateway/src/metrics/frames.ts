import { Counter, type Registry } from "@datalab/shared";
import { type FieldCounter, fieldCounter } from "./fields";

export interface CodecMetrics {
  /** Frames quarantined, by protocol and codec reason (the quarantine counter has no protocol). */
  rejected: Counter<"protocol" | "reason">;
  ignored: Counter<"protocol" | "category">;
  /** Numeric fields not stored with a known unit, by format and field (shared with the MQTT decoders). */
  fields: FieldCounter;
}

const REJECTED = "datalab_gateway_frames_rejected_total";
const IGNORED = "datalab_gateway_frames_ignored_total";

/** The radios' frame counters on the gateway's registry; created once, shared by every radio source. */
export function codecMetrics(registry: Registry): CodecMetrics {
  const rejected =
    (registry.getSingleMetric(REJECTED) as Counter<"protocol" | "reason"> | undefined) ??
    new Counter({
      name: REJECTED,
      help: "Radio frames a protocol codec could not decode (quarantined), by protocol and reason",
      labelNames: ["protocol", "reason"],
      registers: [registry],
    });
  const ignored =
    (registry.getSingleMetric(IGNORED) as Counter<"protocol" | "category"> | undefined) ??
    new Counter({
      name: IGNORED,
      help:
        "Valid radio frames that carry no measurement (log lines, presentations, modem status), " +
        "by protocol and category",
      labelNames: ["protocol", "category"],
      registers: [registry],
    });
  return { rejected, ignored, fields: fieldCounter(registry) };
}
