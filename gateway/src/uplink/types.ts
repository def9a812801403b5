import type { UplinkErrorKind } from "@datalab/shared";

/** Where the uplink stands: status as data, read by the CLI, /healthz and metrics alike. */
export type UplinkState = "connecting" | "connected" | "reconnecting" | "disconnected" | "closed";

/** What went wrong last: the `kind` of the uplink's last error, the same label as in the metrics. */
export type UplinkProblem = UplinkErrorKind;

export interface UplinkStatus {
  state: UplinkState;
  server?: string | undefined;
  lastError?: string | undefined;
  problem?: UplinkProblem | undefined;
  since: number;
}

export interface PubAck {
  seq: number;
  duplicate: boolean;
}

/**
 * Carries batches to the hub. `publish` resolves only with the server's acknowledgement:
 * until then the outbox keeps the rows.
 */
export interface Uplink {
  readonly kind: string;
  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck>;
  status(): UplinkStatus;
  /**
   * Send a health report, fire and forget (core NATS: only the latest one matters, so a lost
   * report is simply replaced by the next). Optional: the in-process uplink has none.
   */
  sendReport?(subject: string, data: Uint8Array): void;
  /** Resolves when the state changes (or after `timeoutMs`). */
  changed(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
