import { bool, field, intIn, mongoUrlField, pgUrlField, type ConfigOf } from "@datalab/shared";
import { z } from "zod";

/** Settings of the sinks: spread into `hubFields`, so they are part of the hub's one-pass config. */
export const sinkFields = {
  pgUrl: pgUrlField,
  pgEnabled: field("DATALAB_PG_ENABLED", bool(true), "write readings to PostgreSQL"),
  pgPoolSize: field(
    "DATALAB_PG_POOL_SIZE",
    intIn(1, 100, 8),
    "PostgreSQL connections per hub process (writes use up to DATALAB_SINK_CONCURRENCY of them)",
  ),
  mongoUrl: mongoUrlField,
  mongoDb: field("DATALAB_MONGO_DB", z.string().min(1).default("datalab"), "MongoDB database name"),
  mongoPoolSize: field(
    "DATALAB_MONGO_POOL_SIZE",
    intIn(1, 100, 10),
    "MongoDB connections per hub process (one client, one pool)",
  ),
} as const;

export type SinkConfig = ConfigOf<typeof sinkFields>;
