import { DecodeError, errorMessage, ThrottledLog, type DecodedReading, type Logger } from "@datalab/shared";
import type { GatewayMetrics } from "../metrics/index";
import type { Delivery } from "../outbox/deliveries";
import type { GroupCommitter } from "../outbox/group-commit";
import { checkSource, validateReadings } from "./validate";

export interface PayloadLimits {
  /** Payloads larger than this are quarantined unread (default 64 KiB). */
  maxPayloadBytes: number;
}

/**
 * A decoder turns one received message into readings, or throws a DecodeError whose
 * `reason` labels the quarantine row and the metric.
 */
export type MessageDecoder = (payload: Buffer, ctx: { topic?: string; sensorIdHint?: string }) => DecodedReading[];

export function checkPayload(payload: Buffer, limits: PayloadLimits): void {
  if (payload.byteLength === 0) throw new DecodeError("empty", "empty payload");
  if (payload.byteLength > limits.maxPayloadBytes) {
    throw new DecodeError(
      "too_large",
      `payload of ${payload.byteLength} bytes exceeds the limit of ${limits.maxPayloadBytes} bytes`,
    );
  }
}

export interface IngestContext {
  topic?: string;
  sensorIdHint?: string;
}

/**
 * source → decode → validate → group commit. Everything a source receives passes here, and
 * leaves either as readings in the outbox or as a quarantine row with a reason: never thrown,
 * never silently dropped.
 */
export class Ingest {
  /** One line per quarantine reason per 10 s at most: a broken sensor must not flood the journal. */
  private readonly quarantineLog: ThrottledLog;
  /** The received-messages tally per source kind (see GatewayMetrics.receivedBy). */
  private readonly receivedBy = new Map<string, { n: number }>();
  constructor(
    private readonly committer: GroupCommitter,
    private readonly metrics: GatewayMetrics,
    private readonly limits: PayloadLimits,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    /** The fold window of a source's receipt-stamped readings (sources/measurement.ts). */
    private readonly rxWindowOf: (source: string) => number = () => 0,
  ) {
    this.quarantineLog = new ThrottledLog(logger, 10_000, now);
  }

  /** `delivery`: the source acknowledges the message once its readings (or its quarantine row) are committed. */
  receive(
    source: string,
    payload: Buffer,
    decoder: MessageDecoder,
    ctx: IngestContext = {},
    receivedAt = this.now(),
    delivery?: Delivery,
  ): void {
    this.countReceived(source);
    try {
      checkPayload(payload, this.limits);
      checkSource(source);
      // The decoder's readings are this message's own objects: filled in where they are.
      const readings = validateReadings(decoder(payload, ctx)) as (DecodedReading & {
        ts: number;
        rxWindow?: number;
      })[];
      // A reading without the sensor's own time is stamped on receipt, and says so: the hub
      // then identifies its measurement by the source format's window, not by the time alone.
      for (const r of readings) {
        if (r.ts === undefined) {
          r.ts = receivedAt;
          r.rxWindow = this.rxWindowOf(source);
        }
      }
      this.committer.accept(
        delivery ? { source, receivedAt, payload, readings, delivery } : { source, receivedAt, payload, readings },
      );
    } catch (err) {
      const reason = err instanceof DecodeError ? err.reason : "decoder_bug";
      if (!(err instanceof DecodeError))
        this.logger.error({ err, source }, "decoder threw an unexpected error; message quarantined");
      this.quarantine(source, payload, reason, errorMessage(err), receivedAt, delivery);
    }
  }

  /**
   * Commit what waits now, unless commits are failing. A source whose acknowledgements wait
   * for the commit asks for this when the broker's in-flight window is nearly used up:
   * otherwise the broker would stop sending until the group's interval ran out.
   */
  commitNow(): void {
    if (!this.committer.failing) this.committer.flush();
  }

  private countReceived(source: string): void {
    const kind = sourceKind(source);
    let c = this.receivedBy.get(kind);
    if (!c) {
      c = this.metrics.receivedBy(kind);
      this.receivedBy.set(kind, c);
    }
    c.n++;
  }

  /** For sources whose own parser already rejected the bytes (bad checksum, truncated frame). */
  quarantine(
    source: string,
    payload: Buffer,
    reason: string,
    detail: string,
    receivedAt = this.now(),
    delivery?: Delivery,
  ): void {
    this.metrics.quarantined.inc({ reason, source: sourceKind(source) });
    this.quarantineLog.warn(reason, { source, reason, detail }, "message quarantined");
    // Keep at most 64 KiB of the raw bytes: an oversized payload must not fill the disk.
    const q = { source, receivedAt, payload: payload.subarray(0, 65_536), reason, detail };
    this.committer.quarantine(delivery ? { ...q, delivery } : q);
  }
}

/** `mqtt:sensors/kitchen` → `mqtt`: metric labels stay few. */
function sourceKind(source: string): string {
  const i = source.indexOf(":");
  return i < 0 ? source : source.slice(0, i);
}
