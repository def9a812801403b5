import pg from "pg";
import { errorMessage, type Logger } from "@datalab/shared";
import type { SinkConfig } from "./config";
import { isPgUnavailable } from "./postgres-errors";
import { migrate } from "./postgres-migrate";
import { PostgresSink, type PostgresSinkOptions } from "./postgres";
import type { Sink } from "./types";

/** A PostgreSQL pool as the hub uses it. */
export function createPgPool(config: Pick<SinkConfig, "pgUrl" | "pgPoolSize">, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: config.pgUrl,
    max: config.pgPoolSize,
    application_name: "datalab-hub",
    // Without it, a write waits for ever for a connection to a server that does not answer.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  });
  // An idle client losing its server (Postgres restart) must not crash the process.
  pool.on("error", (err) => logger.warn({ err: err.message }, "postgres pool client error"));
  return pool;
}

/**
 * The PostgreSQL sink, schema migrated. When Postgres is unreachable at start the hub still
 * starts (so MongoDB keeps flowing); the sink migrates once the database answers.
 */
export async function createPostgresSink(
  pool: pg.Pool,
  logger: Logger,
  opts: Pick<PostgresSinkOptions, "onFolded"> = {},
): Promise<PostgresSink> {
  const log = logger.child({ sink: "postgres" });
  try {
    await migrate(pool, logger);
    return new PostgresSink(pool, log, opts);
  } catch (err) {
    if (!isPgUnavailable(err)) throw err;
    log.warn({ err: errorMessage(err) }, "postgres unreachable at start; its consumer waits for it and migrates then");
    return new PostgresSink(pool, log, { ...opts, pendingMigration: () => migrate(pool, logger) });
  }
}

/**
 * The MongoDB sink, or undefined when DATALAB_MONGO_URL is unset. The driver module is
 * imported only here, only when configured: a hub without MongoDB never loads it.
 */
export async function createMongoSink(
  config: Pick<SinkConfig, "mongoUrl" | "mongoDb" | "mongoPoolSize">,
  logger: Logger,
): Promise<Sink | undefined> {
  if (!config.mongoUrl) return undefined;
  const { MongoSink } = await import("./mongo");
  const sink = new MongoSink(
    { url: config.mongoUrl, dbName: config.mongoDb, poolSize: config.mongoPoolSize },
    logger.child({ sink: "mongo" }),
  );
  // Indexes at start, without waiting: a MongoDB that is down retries them at the first write.
  sink.ensureIndexes().catch(() => undefined);
  return sink;
}
