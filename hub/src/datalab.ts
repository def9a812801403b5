import pg from "pg";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage, type Logger, type Registry, type Route, type Subjects } from "@datalab/shared";
import { ApiAuth } from "./api/auth";
import { resolveApiToken, type DataLabConfig } from "./api/config";
import { QueryGate } from "./api/gate";
import { createApiRoutes } from "./api/routes";
import { createDashboardRoutes } from "./dashboard/server";
import { createLiveFeedMetrics, LiveFanout, type LiveFanoutOptions, LiveFeed, notifyOnWrite } from "./live";
import type { Sink } from "./sinks/types";

/**
 * The DataLab a hub serves on its HTTP port, wired here in one place: the query API (api/),
 * the live stream (live/) and the dashboard (dashboard/), behind one token.
 */
export interface DataLab {
  /** Routes to mount on the hub's HTTP server (all but /healthz behind the token, when one is set). */
  readonly routes: Record<string, Route>;
  readonly feed: LiveFeed;
  /** Its own pool (unless handed one): API queries never take a connection the sink needs to write. */
  readonly pool: pg.Pool;
  /** The sink, announcing each batch it commits to the live feed (or, with fanOut, to every hub). */
  announcing(sink: Sink): Sink;
  /**
   * Announce commits on `subjects.live` (core NATS) and stream what every hub announces there,
   * so each hub's /api/live carries every committed reading; announce only while some hub has
   * a browser, as beacons on `subjects.liveWatching` tell (live/fanout.ts). Without it (the
   * in-process demo) the feed hears this hub's commits directly.
   */
  fanOut(nc: NatsConnection, subjects: Pick<Subjects, "live" | "liveWatching">, options?: LiveFanoutOptions): void;
  close(): Promise<void>;
}

/**
 * `sharedPool`: a pool the hub was handed instead of DATALAB_PG_URL (the desktop demo's
 * embedded Postgres); the API then queries through it and leaves closing it to its owner.
 */
export function createDataLab(
  c: DataLabConfig,
  registry: Registry,
  logger: Logger,
  sharedPool?: pg.Pool,
  token = resolveApiToken(c),
): DataLab {
  const auth = new ApiAuth(token, { maxFailures: c.loginMaxFailures, registry });
  const pool = sharedPool ?? createApiPool(c, logger);
  const gate = new QueryGate(pool, {
    concurrency: c.apiPoolSize,
    maxWaitMs: c.apiQueueWaitMs,
    maxWaiting: 16 * c.apiPoolSize,
    retryAfterSeconds: 5,
    registry,
  });

  let fanout: LiveFanout | undefined;
  const feed = new LiveFeed({
    maxClients: c.liveMaxClients,
    maxClientsPerAddress: c.liveMaxClientsPerAddress,
    bufferBytes: c.liveClientBufferBytes,
    stallMs: c.liveStallSeconds * 1_000,
    metrics: createLiveFeedMetrics(registry),
    logger: logger.child({ part: "live" }),
    onClients: (n) => fanout?.watched(n > 0),
  });

  const routes: Record<string, Route> = {};
  const api = createApiRoutes(gate, {
    maxRows: c.apiMaxRows,
    maxRangeMs: c.apiMaxRangeDays * 86_400_000,
    gatewayOnlineSeconds: c.gatewayOnlineSeconds,
    statementTimeoutMs: c.apiStatementTimeoutMs,
    logger,
  });
  for (const [path, route] of Object.entries(api)) routes[path] = auth.json(route);
  routes["/api/live"] = auth.json(feed.route);
  for (const [path, route] of Object.entries(createDashboardRoutes())) routes[path] = auth.page(route);
  routes["/login"] = auth.login;
  if (auth.enabled) {
    // The shared server's /metrics is open; with a token set it asks for the token too
    // (Prometheus sends it with `authorization: { credentials_file: ... }`).
    routes["/metrics"] = auth.json(async (_req, res) => {
      const body = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType });
      res.end(body);
    });
  }

  return {
    routes,
    feed,
    pool,
    announcing(sink) {
      return notifyOnWrite(sink, (readings) => (fanout ? fanout.announce(readings) : feed.publish(readings)), logger);
    },
    fanOut(nc, subjects, options) {
      fanout = new LiveFanout(
        nc,
        subjects,
        (readings) => feed.publish(readings),
        registry,
        logger.child({ part: "live-fanout" }),
        options,
      );
      fanout.start();
      fanout.watched(feed.size > 0);
    },
    async close() {
      fanout?.stop();
      feed.close();
      if (!sharedPool) await pool.end();
    },
  };
}

function createApiPool(c: DataLabConfig, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: c.pgUrl,
    max: c.apiPoolSize,
    application_name: "datalab-api",
    connectionTimeoutMillis: 10_000,
    statement_timeout: c.apiStatementTimeoutMs,
    // The API only reads; a read-only session makes that a property of the connection, not of
    // the code.
    options: "-c default_transaction_read_only=on",
  });
  pool.on("error", (err) => logger.warn({ err: errorMessage(err) }, "api pool client error"));
  return pool;
}
