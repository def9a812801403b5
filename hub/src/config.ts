import {
  bool,
  commonFields,
  field,
  httpPortField,
  intIn,
  loadConfig,
  mongoUrlField,
  natsSecurityFields,
  pgUrlField,
  type ConfigOf,
  type LoadOptions,
} from "@datalab/shared";
import { z } from "zod";

export const hubFields = {
  ...commonFields,
  pgUrl: pgUrlField,
  pgEnabled: field("DATALAB_PG_ENABLED", bool(true), "write readings to PostgreSQL"),
  pgPoolSize: field("DATALAB_PG_POOL_SIZE", intIn(1, 100, 4), "PostgreSQL connections per hub process"),
  mongoUrl: mongoUrlField,
  mongoDb: field("DATALAB_MONGO_DB", z.string().min(1).default("datalab"), "MongoDB database name"),
  httpPort: httpPortField(8080),
  httpHost: field("DATALAB_HTTP_HOST", z.string().default("0.0.0.0"), "address the HTTP server listens on"),
  ...natsSecurityFields,
  streamReplicas: field("DATALAB_STREAM_REPLICAS", intIn(1, 5, 1), "JetStream replicas for the streams the hub creates (3 on a cluster)"),
  maxAckPending: field("DATALAB_MAX_ACK_PENDING", intIn(1, 10_000, 64), "batches in flight per sink consumer"),
  ackWaitMs: field("DATALAB_ACK_WAIT_MS", intIn(1_000, 600_000, 30_000), "JetStream ack wait (ms)"),
  maxDeliver: field("DATALAB_MAX_DELIVER", intIn(1, 1_000, 5), "failed attempts (sink up) before a batch is dead-lettered"),
  batchMaxBytes: field("DATALAB_HUB_BATCH_MAX_BYTES", intIn(1_024, 64 * 1024 * 1024, 1024 * 1024), "largest batch accepted, checked before decoding"),
  batchMaxMessages: field("DATALAB_HUB_BATCH_MAX_MESSAGES", intIn(1, 1_000_000, 10_000), "most messages in one batch, checked before validating"),
} as const;

export type HubConfig = ConfigOf<typeof hubFields>;

export function loadHubConfig(opts: LoadOptions = {}): HubConfig {
  return loadConfig(hubFields, opts);
}
