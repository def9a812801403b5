import type { DecodedReading } from "@datalab/shared";
import type { CodecOutput, ProtocolName } from "@datalab/sensors";
import type { Ingest } from "../../ingest/index";
import type { CodecMetrics } from "../../metrics/index";

/** Frames seen by one source since it started, for its status. */
export interface FrameCounts {
  readings: number;
  ignored: number;
  rejected: number;
  /** Reason → count of rejected frames. Bounded: the codecs have a fixed set of reasons. */
  rejectedBy: Record<string, number>;
}

/**
 * The bridge from a protocol codec (sensors/src/protocols) to ingest: readings go on to
 * validate and the outbox with the frame's raw bytes; what the codec rejected goes to the
 * quarantine with the codec's reason (bad_checksum, unknown_message_type, truncated_frame...)
 * and is counted by protocol; frames that are valid but carry no measurement (a MySensors log
 * line, an XBee modem status) are only counted.
 */
export class CodecBridge {
  readonly counts: FrameCounts = { readings: 0, ignored: 0, rejected: 0, rejectedBy: {} };

  constructor(
    private readonly ingest: Ingest,
    /** e.g. `serial:/dev/serial/by-id/usb-FTDI_...-port0:xbee` */
    private readonly source: string,
    private readonly protocol: ProtocolName,
    private readonly metrics: CodecMetrics,
  ) {}

  handle(out: CodecOutput<unknown>, receivedAt?: number): void {
    switch (out.kind) {
      case "readings": {
        this.counts.readings += 1;
        this.metrics.fields.count(this.protocol, out.notes);
        const readings: DecodedReading[] = out.readings;
        this.ingest.receive(this.source, out.raw, () => readings, {}, receivedAt);
        return;
      }
      case "ignored":
        this.counts.ignored += 1;
        this.metrics.fields.count(this.protocol, out.notes);
        this.metrics.ignored.inc({ protocol: this.protocol, category: out.category });
        return;
      case "error":
        this.reject(
          out.reason,
          `${this.protocol} ${out.stage === "parse" ? "frame" : "content"}: ${out.message}`,
          out.raw,
          receivedAt,
        );
        return;
    }
  }

  /** Quarantine bytes with a codec reason; also for bytes the source itself gives up on. */
  reject(reason: string, detail: string, raw: Buffer, receivedAt?: number): void {
    this.counts.rejected += 1;
    this.counts.rejectedBy[reason] = (this.counts.rejectedBy[reason] ?? 0) + 1;
    this.metrics.rejected.inc({ protocol: this.protocol, reason });
    this.ingest.quarantine(this.source, raw, reason, detail, receivedAt);
  }
}
