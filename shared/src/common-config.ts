import { hostname } from "node:os";
import { z } from "zod";
import { field, intIn, urlListOf, urlOf } from "./config";
import { GATEWAY_ID_PATTERN } from "./subjects";

/** The configuration contract every component shares. */
export const commonFields = {
  mqttUrl: field(
    "DATALAB_MQTT_URL",
    urlOf(["mqtt", "mqtts", "tcp", "ssl", "ws", "wss"], "mqtt://127.0.0.1:1883"),
    "MQTT broker the sensors publish to",
  ),
  natsUrl: field(
    "DATALAB_NATS_URL",
    urlListOf(["nats", "tls", "ws", "wss"], "nats://127.0.0.1:4222"),
    "NATS server(s) with JetStream, comma-separated",
  ),
  natsPrefix: field(
    "DATALAB_NATS_PREFIX",
    z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "expected letters, digits, - or _")
      .default("datalab"),
    "first token of every NATS subject; the stream is named after it",
  ),
  logLevel: field(
    "DATALAB_LOG_LEVEL",
    z
      .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
        error: "expected trace, debug, info, warn, error, fatal or silent",
      })
      .default("info"),
    "log level",
  ),
} as const;

export const gatewayIdField = field(
  "DATALAB_GATEWAY_ID",
  z
    .string({ error: "expected a gateway id" })
    .regex(GATEWAY_ID_PATTERN, "expected 1-64 letters, digits, - or _ (it becomes a NATS subject token)")
    .default(defaultGatewayId()),
  "this gateway's id (default: the host name)",
);

export const pgUrlField = field(
  "DATALAB_PG_URL",
  urlOf(["postgres", "postgresql"], "postgres://postgres@127.0.0.1:5432/test"),
  "PostgreSQL connection URL",
);

export const mongoUrlField = field(
  "DATALAB_MONGO_URL",
  urlOf(["mongodb", "mongodb+srv"]).optional(),
  "MongoDB connection URL (unset: the MongoDB sink is off)",
);

export const httpPortField = (def: number) =>
  field("DATALAB_HTTP_PORT", intIn(0, 65535, def), "HTTP port for /healthz and /metrics (0: any free port)");

function defaultGatewayId(): string {
  const host = (process.env.HOSTNAME || hostname()).replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64);
  return host || "gateway";
}
