import { z } from "zod";
import { field, intIn, readTokenFile, tokenSchema } from "@datalab/shared";

/**
 * Settings of the DataLab's query API, live stream and dashboard. Spread into `hubFields`,
 * so they are part of the hub's one-pass config (env, config file, `--help`).
 */
export const dataLabFields = {
  apiToken: field(
    "DATALAB_API_TOKEN",
    tokenSchema.optional(),
    "bearer token required by the API, live stream, dashboard and /metrics " +
      "(unset: no auth, allowed only on a loopback DATALAB_HTTP_HOST; /healthz never asks)",
    { secret: true },
  ),
  apiTokenFile: field(
    "DATALAB_API_TOKEN_FILE",
    z.string().optional(),
    "file holding DATALAB_API_TOKEN (e.g. a mounted secret)",
  ),
  apiPoolSize: field(
    "DATALAB_API_POOL_SIZE",
    intIn(1, 50, 4),
    "PostgreSQL connections for API queries (apart from the sink's, so queries never hold back writes)",
  ),
  apiQueueWaitMs: field(
    "DATALAB_API_QUEUE_WAIT_MS",
    intIn(0, 60_000, 1_000),
    "longest an API query waits for one of the DATALAB_API_POOL_SIZE connections; " +
      "past it (or with 16 per connection already waiting) the answer is 503 with Retry-After",
  ),
  loginMaxFailures: field(
    "DATALAB_LOGIN_MAX_FAILURES",
    intIn(1, 10_000, 10),
    "wrong tokens one client address may post to /login per minute; more get 429 with Retry-After",
  ),
  apiStatementTimeoutMs: field(
    "DATALAB_API_STATEMENT_TIMEOUT_MS",
    intIn(100, 600_000, 15_000),
    "longest an API query may run in PostgreSQL (ms)",
  ),
  apiMaxRows: field(
    "DATALAB_API_MAX_ROWS",
    intIn(10, 1_000_000, 20_000),
    "most rows (readings, buckets, sensors) one API answer holds",
  ),
  apiMaxRangeDays: field(
    "DATALAB_API_MAX_RANGE_DAYS",
    intIn(1, 36_500, 366),
    "longest time range one readings query may ask for (days)",
  ),
  gatewayOnlineSeconds: field(
    "DATALAB_GATEWAY_ONLINE_SECONDS",
    intIn(1, 86_400, 120),
    "a gateway counts as online if it delivered or reported within this many seconds",
  ),
  liveMaxClients: field(
    "DATALAB_LIVE_MAX_CLIENTS",
    intIn(1, 10_000, 200),
    "live-stream (SSE) connections served at once; more get 503",
  ),
  liveMaxClientsPerAddress: field(
    "DATALAB_LIVE_MAX_CLIENTS_PER_ADDRESS",
    intIn(1, 10_000, 10),
    "live-stream connections one client address (an IPv6 /64) may hold; more get 503 " +
      "(behind a reverse proxy every client has the proxy's address)",
  ),
  liveClientBufferBytes: field(
    "DATALAB_LIVE_CLIENT_BUFFER_BYTES",
    intIn(16 * 1024, 64 * 1024 * 1024, 1024 * 1024),
    "bytes queued for one live client before its readings are dropped (and counted)",
  ),
  liveStallSeconds: field(
    "DATALAB_LIVE_STALL_SECONDS",
    intIn(1, 3_600, 30),
    "a live client that stays over its buffer this long is disconnected",
  ),
} as const;

/** The settings the DataLab reads (a HubConfig satisfies it). */
export interface DataLabConfig {
  readonly pgUrl: string;
  readonly apiToken: string | undefined;
  readonly apiTokenFile: string | undefined;
  readonly apiPoolSize: number;
  readonly apiQueueWaitMs: number;
  readonly loginMaxFailures: number;
  readonly apiStatementTimeoutMs: number;
  readonly apiMaxRows: number;
  readonly apiMaxRangeDays: number;
  readonly gatewayOnlineSeconds: number;
  readonly liveMaxClients: number;
  readonly liveMaxClientsPerAddress: number;
  readonly liveClientBufferBytes: number;
  readonly liveStallSeconds: number;
}

/**
 * The token from DATALAB_API_TOKEN or the file DATALAB_API_TOKEN_FILE names; read now, so a bad
 * path fails at start.
 */
export function resolveApiToken(c: Pick<DataLabConfig, "apiToken" | "apiTokenFile">): string | undefined {
  if (c.apiToken) return c.apiToken;
  return c.apiTokenFile ? readTokenFile("DATALAB_API_TOKEN_FILE", c.apiTokenFile) : undefined;
}
