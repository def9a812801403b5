import type { DecodedReading, Logger, WireFormat } from "@datalab/shared";
import type { Delivery } from "./deliveries";
import type { Synchronous } from "./open";

/** What to do when the outbox reaches its cap. Either way every reading lost is counted. */
export type FullPolicy = "drop_oldest" | "refuse_newest";

/**
 * Why readings were dropped: `outbox_full` (the configured cap), `disk_full` (the file
 * system said no, or the hard limit was hit), `commit_failed` (commits kept failing and the
 * bounded in-memory buffer overflowed), `outbox_damaged` (found at start: readings a damaged,
 * cut or rolled-back outbox file cost, estimated; see damage.ts).
 */
export type DropReason = "outbox_full" | "disk_full" | "commit_failed" | "outbox_damaged";

export interface AcceptedMessage {
  source: string;
  receivedAt: number;
  payload: Buffer;
  /** Validated readings, each with its time (sensor time or receive time). */
  readings: (DecodedReading & { ts: number })[];
  /** Set by a source that acknowledges a message only once it is committed (MQTT QoS 1). */
  delivery?: Delivery;
}

export interface QuarantinedMessage {
  source: string;
  receivedAt: number;
  payload: Buffer;
  reason: string;
  detail: string;
  delivery?: Delivery;
}

/** A quarantined message as listed back (newest first). */
export interface QuarantineEntry {
  id: number;
  receivedAt: number;
  source: string;
  reason: string;
  detail: string;
  payload: Buffer;
}

export interface OutboxRow {
  id: number;
  firstSeq: number;
  lastSeq: number;
  /** Readings in the row. */
  n: number;
  /** Messages in the row (a few consecutive messages of one group commit). */
  m: number;
  receivedAt: number;
  wire: string;
  /** Bytes the row takes in the file: its text's (UTF-8), or its packed bytes when stored deflated. */
  bytes: number;
  /** Bytes of `wire` (UTF-8), what the row adds to a batch. */
  wireBytes: number;
}

/** A row about to be inserted: its id comes with the insert. `packed`: its text deflated, stored instead. */
export type EncodedRow = Omit<OutboxRow, "id"> & { packed?: Buffer };

/** A batch's rows (ids) and readings (seqs): both, so a restart can check it found the same rows. */
export interface BatchRange {
  firstId: number;
  lastId: number;
  firstSeq: number;
  lastSeq: number;
}

/** Messages, readings and wire bytes of some rows. */
export interface Totals {
  messages: number;
  readings: number;
  bytes: number;
}

export interface OutboxStats {
  messages: number;
  readings: number;
  /** Bytes of wire messages (the content, not the file: see `fileBytes`). */
  bytes: number;
  oldestReceivedAt: number | null;
}

export interface OutboxOptions {
  synchronous?: Synchronous;
  /** The cap on the database file + WAL (default 256 MiB). */
  maxBytes?: number;
  fullPolicy?: FullPolicy;
  /** Quarantine keeps at most this many rows (and at most its byte budget); the oldest go first. */
  maxQuarantineRows?: number;
  logger: Logger;
  /** Called for each kind of damage found at start (see damage.ts), with where its evidence went. */
  onCorrupt?: (movedTo: string, err: Error) => void;
  /** Called after a transaction that dropped or refused readings committed. */
  onDrop?: (reason: DropReason, readings: number) => void;
  /**
   * Readings at most in one row (default ROW_MAX_MESSAGES). Rows are what batches are made
   * of, so keep it well under the batch size: a batch never splits a row.
   */
  rowMaxReadings?: number;
  /**
   * The wire format new rows are written in (shared/src/batch.ts; default 2). Rows already
   * stored keep theirs; a batch is made of rows of one format.
   */
  wireFormat?: WireFormat;
}

export const DEFAULT_OUTBOX_MAX_BYTES = 256 * 1024 * 1024;

/** A row holds at most this many messages... */
export const ROW_MAX_MESSAGES = 64;
/** ...and about this many bytes of wire text, so that a row fits a 4 KiB page (no overflow pages). */
export const ROW_MAX_BYTES = 3_500;
/** A row stored deflated holds up to this many times as much text (JSON shrinks three- to sixfold). */
export const PACKED_TEXT_FACTOR = 6;
