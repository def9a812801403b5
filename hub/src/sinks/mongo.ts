import {
  MongoBulkWriteError,
  MongoClient,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type Collection,
  type WriteError,
} from "mongodb";
import { errorMessage, type Logger } from "@datalab/shared";
import { messageDocuments, type MessageDocument } from "./mongo-document";
import { SinkRejectedError, SinkUnavailableError, type Sink, type SinkBatch, type WriteResult } from "./types";

/**
 * MongoDB sink: raw messages (payload as received, plus the decoded readings) in the
 * `messages` collection, one document per wire message with a deterministic `_id`.
 * Loaded only when DATALAB_MONGO_URL is set (hub/src/sinks/index.ts imports it lazily).
 */

export interface MongoSinkOptions {
  url: string;
  dbName: string;
  /** Connections in the driver's pool; the process holds one MongoClient. */
  poolSize?: number;
  collection?: string;
  /** How long an operation waits for a reachable server before failing (ms). */
  serverSelectionTimeoutMs?: number;
}

/** Duplicate key: the document is already there (a redelivery). */
const DUPLICATE_KEY = 11000;

/**
 * Server error codes that mean "not now" rather than "not this document": the retryable
 * set of the MongoDB retryable-writes spec, plus running out of disk.
 */
const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 14031]);

export class MongoSink implements Sink {
  readonly name = "mongo";
  /** One client per hub process; its pool is shared by every write. */
  readonly client: MongoClient;
  readonly collection: Collection<MessageDocument>;
  private indexes: Promise<void> | undefined;

  constructor(
    opts: MongoSinkOptions,
    private readonly logger: Logger,
  ) {
    // The driver connects on first use, so a MongoDB that is down at start does not stop
    // the hub (PostgreSQL keeps flowing); this sink's consumer simply waits.
    this.client = new MongoClient(opts.url, {
      appName: "datalab-hub",
      maxPoolSize: opts.poolSize ?? 10,
      serverSelectionTimeoutMS: opts.serverSelectionTimeoutMs ?? 5_000,
      connectTimeoutMS: 5_000,
    });
    this.collection = this.client.db(opts.dbName).collection<MessageDocument>(opts.collection ?? "messages");
  }

  async write(b: SinkBatch): Promise<WriteResult> {
    await this.ensureIndexes();
    const docs = messageDocuments(b);
    if (docs.length === 0) return { inserted: 0, duplicates: 0 };
    try {
      // Unordered: one duplicate (or one refused document) does not stop the others.
      const res = await this.collection.insertMany(docs, { ordered: false });
      return { inserted: res.insertedCount, duplicates: 0 };
    } catch (err) {
      const dup = duplicatesOnly(err);
      if (dup) return dup;
      throw classifyMongoError(err);
    }
  }

  /**
   * Indexes for "one sensor over time" (multikey on the readings' sensor ids), "all messages
   * in a time range" and "the message of a reading" (gateway, instance, seq: the notebooks'
   * join). createIndex is idempotent; it starts with the sink (createMongoSink) and is awaited
   * by the first write, so a MongoDB that is down at start only delays it.
   */
  ensureIndexes(): Promise<void> {
    this.indexes ??= this.createIndexes().catch((err: unknown) => {
      this.indexes = undefined;
      throw err;
    });
    return this.indexes;
  }

  private async createIndexes(): Promise<void> {
    try {
      // One at a time: FerretDB 1.24 panics (and drops the connection) on a createIndexes
      // command listing several indexes that already exist; createIndex of one is idempotent
      // on both servers.
      await this.collection.createIndex({ "readings.sensorId": 1, receivedAt: 1 }, { name: "sensor_time" });
      await this.collection.createIndex({ receivedAt: 1 }, { name: "time" });
      await this.collection.createIndex({ gatewayId: 1, receivedAt: 1 }, { name: "gateway_time" });
      await this.collection.createIndex({ gatewayId: 1, instance: 1, firstSeq: 1 }, { name: "gateway_seq" });
    } catch (err) {
      const e = classifyMongoError(err);
      if (e instanceof SinkUnavailableError) throw e;
      // A server that refuses an index still stores documents: log loudly, keep writing.
      this.logger.error(
        { err: errorMessage(err) },
        "could not create MongoDB indexes; queries by sensor, time and seq will scan",
      );
    }
  }

  async healthy(): Promise<boolean> {
    try {
      await this.collection.db.command({ ping: 1 });
      return true;
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, "mongodb not answering");
      return false;
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** When every write error of an unordered insert is a duplicate key, the batch is written. */
export function duplicatesOnly(err: unknown): WriteResult | undefined {
  if (!(err instanceof MongoBulkWriteError)) return undefined;
  // A write concern error means the server could not confirm durability: retry the batch.
  if (err.err) return undefined;
  const errors: WriteError[] = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  if (errors.length === 0 || errors.some((e) => e.code !== DUPLICATE_KEY)) return undefined;
  return { inserted: err.insertedCount, duplicates: errors.length };
}

export function classifyMongoError(err: unknown): Error {
  const msg = `mongodb write failed: ${describe(err)}`;
  if (isMongoUnavailable(err)) return new SinkUnavailableError(msg, { cause: err });
  return new SinkRejectedError(msg, { cause: err });
}

/** Node socket errors: the server went away. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

export function isMongoUnavailable(err: unknown, depth = 0): boolean {
  if (depth > 3) return false;
  // insertMany reports a connection lost mid-bulk as a MongoBulkWriteError with no write
  // errors, the socket error as its code and the original error as its errorResponse.
  if (err instanceof MongoBulkWriteError) {
    const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    if (errors.filter(Boolean).length === 0) {
      if (typeof err.code === "string" && NETWORK_CODES.has(err.code)) return true;
      const inner: unknown = err.errorResponse;
      if (inner && inner !== err && isMongoUnavailable(inner, depth + 1)) return true;
    }
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError
  ) {
    return true;
  }
  const e = err as { code?: unknown; hasErrorLabel?: (l: string) => boolean } | null;
  if (
    e &&
    typeof e.hasErrorLabel === "function" &&
    (e.hasErrorLabel("RetryableWriteError") || e.hasErrorLabel("ResetPool"))
  )
    return true;
  return typeof e?.code === "number" && UNAVAILABLE_CODES.has(e.code);
}

function describe(err: unknown): string {
  if (err instanceof MongoBulkWriteError) {
    const errors: WriteError[] = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    const other = errors.find((e) => e.code !== DUPLICATE_KEY);
    if (other)
      return `document ${other.index}: ${other.errmsg ?? ""} (code ${other.code}; ${errors.length} write errors)`;
  }
  return errorMessage(err);
}
