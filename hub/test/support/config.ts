import { createLogger, silentLogger, type Logger } from "@datalab/shared";
import { uniqueId } from "@datalab/shared/testing";
import { loadHubConfig, type HubConfig } from "../../src/config";

/** A hub config of the test's own: unique NATS prefix, HTTP on a free port, quiet logs. */
export function testConfig(env: Record<string, string | undefined> = {}): HubConfig {
  return loadHubConfig({
    env: {
      DATALAB_NATS_PREFIX: uniqueId("t"),
      DATALAB_HTTP_PORT: "0",
      DATALAB_HTTP_HOST: "127.0.0.1",
      DATALAB_LOG_LEVEL: process.env.DATALAB_TEST_LOG_LEVEL ?? "silent",
      ...env,
    },
  });
}

/** The same config as environment variables, for a hub run as a child process. */
export function configEnv(c: HubConfig): Record<string, string> {
  const env: Record<string, string> = {
    DATALAB_NATS_URL: c.natsUrl.join(","),
    DATALAB_NATS_PREFIX: c.natsPrefix,
    DATALAB_PG_URL: c.pgUrl,
    DATALAB_PG_ENABLED: String(c.pgEnabled),
    DATALAB_HTTP_PORT: String(c.httpPort),
    DATALAB_HTTP_HOST: c.httpHost,
    DATALAB_ACK_WAIT_MS: String(c.ackWaitMs),
    DATALAB_MAX_DELIVER: String(c.maxDeliver),
    DATALAB_MAX_ACK_PENDING: String(c.maxAckPending),
    DATALAB_SINK_CONCURRENCY: String(c.sinkConcurrency),
    DATALAB_STREAM_REPLICAS: String(c.streamReplicas),
    DATALAB_LOG_LEVEL: c.logLevel,
    DATALAB_MONGO_DB: c.mongoDb,
  };
  if (c.mongoUrl) env.DATALAB_MONGO_URL = c.mongoUrl;
  return env;
}

/** Silent unless DATALAB_TEST_LOG_LEVEL is set (then JSON lines on stderr, for debugging a test). */
export function testLogger(): Logger {
  const level = process.env.DATALAB_TEST_LOG_LEVEL;
  return level ? createLogger("hub", level as "debug") : silentLogger();
}
