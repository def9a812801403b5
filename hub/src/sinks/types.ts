import type { Batch, Reading } from "@datalab/shared";

/** What a sink receives: a decoded, trusted batch (gateway id taken from the subject). */
export interface SinkBatch {
  gatewayId: string;
  batch: Batch;
  readings: Reading[];
  /** JetStream stream sequence of the batch: unique and stable across redeliveries. */
  streamSeq: number;
}

/**
 * A place batches are written to (PostgreSQL, MongoDB). `write` must be idempotent: the same
 * batch may come again after a crash between commit and ack.
 */
export interface Sink {
  readonly name: string;
  write(b: SinkBatch): Promise<void>;
  /** True when the database answers; the consumer waits on this instead of burning retries. */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}
