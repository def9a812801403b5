import { SinkError, type Batch, type Reading } from "@datalab/shared";

/** What a sink receives: a decoded, trusted batch (gateway id taken from the subject). */
export interface SinkBatch {
  gatewayId: string;
  batch: Batch;
  readings: Reading[];
  /** JetStream stream sequence of the batch: unique and stable across redeliveries. */
  streamSeq: number;
  /** Size of the batch on the wire. */
  bytes: number;
  /** Delivered before (JetStream says so): some of it may be written already. */
  redelivered?: boolean;
}

/** What one write did. A redelivered batch comes back with everything counted as `duplicates`. */
export interface WriteResult {
  /** Rows (Postgres) or documents (MongoDB) that were new. */
  inserted: number;
  /** Rows or documents that were already there: a redelivery, or a batch re-formed by the gateway. */
  duplicates: number;
  /**
   * Postgres: readings not stored because their measurement was (the same sensor, metric and
   * time heard by another gateway, a radio's repeat); see docs/radios.md.
   */
  folded?: number;
}

/**
 * A place batches are written to (PostgreSQL, MongoDB). `write` must be idempotent: the same
 * batch may come again after a crash between commit and ack.
 *
 * A write that fails throws:
 * - `SinkUnavailableError` when the database cannot be reached or cannot take writes now
 *   (down, restarting, disk full, schema missing): not the batch's fault, so the consumer
 *   pauses instead of counting the failure against the batch;
 * - any other error when the database refused this batch: counted, and after
 *   DATALAB_MAX_DELIVER such failures the batch is dead-lettered.
 */
export interface Sink {
  readonly name: string;
  write(b: SinkBatch): Promise<WriteResult>;
  /** True when the database answers; the consumer waits on this instead of burning retries. */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

/** The database is unreachable or not accepting writes; retrying later will help. */
export class SinkUnavailableError extends SinkError {
  override name = "SinkUnavailableError";
}

/** The database refused this batch (a constraint, a value it cannot store). */
export class SinkRejectedError extends SinkError {
  override name = "SinkRejectedError";
}
