import { resolve } from "node:path";
import { z } from "zod";
import {
  bool,
  commonFields,
  field,
  gatewayIdField,
  httpPortField,
  intIn,
  loadConfig,
  natsSecurityFields,
  stringList,
  type ConfigOf,
  type LoadOptions,
} from "@datalab/shared";

export const gatewayFields = {
  ...commonFields,
  gatewayId: gatewayIdField,
  dataDir: field("DATALAB_DATA_DIR", z.string().min(1).default(".data/gateway").transform((p) => resolve(p)), "folder of the SQLite outbox"),
  httpPort: httpPortField(9101),
  httpHost: field("DATALAB_HTTP_HOST", z.string().default("0.0.0.0"), "address the HTTP server listens on"),
  mqttEnabled: field("DATALAB_MQTT_ENABLED", bool(true), "read sensors from the MQTT broker"),
  mqttTopics: field("DATALAB_MQTT_TOPICS", stringList(["sensors", "sensors/#"]), "topic filters with DataLab JSON payloads, comma-separated"),
  mqttRtl433Topics: field("DATALAB_MQTT_RTL433_TOPICS", stringList(["rtl_433/+/events"]), "topic filters with rtl_433 events, comma-separated (empty: none)"),
  mqttClientId: field("DATALAB_MQTT_CLIENT_ID", z.string().optional(), "MQTT client id (default: datalab-gateway-<gateway id>)"),
  mqttPersistentSession: field("DATALAB_MQTT_PERSISTENT", bool(false), "persistent MQTT session (QoS 1, fixed client id): the broker keeps messages while the gateway restarts"),
  mqttSessionExpiry: field("DATALAB_MQTT_SESSION_EXPIRY", intIn(0, 4294967295, 86_400), "MQTT 5 session expiry in seconds, for the persistent session"),
  mqttUsername: field("DATALAB_MQTT_USERNAME", z.string().optional(), "MQTT user name"),
  mqttPassword: field("DATALAB_MQTT_PASSWORD", z.string().optional(), "MQTT password", { secret: true }),
  mqttPasswordFile: field("DATALAB_MQTT_PASSWORD_FILE", z.string().optional(), "file holding the MQTT password"),
  mqttTlsCa: field("DATALAB_MQTT_TLS_CA", z.string().optional(), "CA certificate file for mqtts://"),
  mqttTlsCert: field("DATALAB_MQTT_TLS_CERT", z.string().optional(), "client certificate file for mqtts://"),
  mqttTlsKey: field("DATALAB_MQTT_TLS_KEY", z.string().optional(), "client key file for mqtts://"),
  ...natsSecurityFields,
  natsEnsureStream: field("DATALAB_NATS_ENSURE_STREAM", bool(true), "create the readings stream if missing"),
  maxPayloadBytes: field("DATALAB_MAX_PAYLOAD_BYTES", intIn(16, 16 * 1024 * 1024, 65_536), "largest accepted message; larger ones are quarantined"),
  synchronous: field(
    "DATALAB_SQLITE_SYNCHRONOUS",
    z.enum(["FULL", "NORMAL"], { error: "expected FULL or NORMAL" }).default("FULL"),
    "FULL: a commit survives a power cut; NORMAL: it survives a crash, but the last commits may be lost on a power cut",
  ),
  commitIntervalMs: field("DATALAB_COMMIT_INTERVAL_MS", intIn(1, 10_000, 100), "group commit: commit at least this often (ms)"),
  commitMaxReadings: field("DATALAB_COMMIT_MAX_READINGS", intIn(1, 100_000, 1_000), "group commit: commit when this many readings wait"),
  batchMaxReadings: field("DATALAB_BATCH_MAX_READINGS", intIn(1, 50_000, 2_000), "a batch closes at this many readings"),
  batchMaxBytes: field("DATALAB_BATCH_MAX_BYTES", intIn(1_024, 8 * 1024 * 1024, 512 * 1024), "a batch closes at this many bytes (stay under NATS max_payload)"),
  batchMaxAgeMs: field("DATALAB_BATCH_MAX_AGE_MS", intIn(0, 600_000, 100), "a batch closes when its oldest reading waited this long (ms)"),
  shutdownDrainMs: field("DATALAB_SHUTDOWN_DRAIN_MS", intIn(0, 600_000, 5_000), "on SIGTERM, try to send the outbox for this long"),
} as const;

export type GatewayConfig = ConfigOf<typeof gatewayFields>;

export function loadGatewayConfig(opts: LoadOptions = {}): GatewayConfig {
  return loadConfig(gatewayFields, opts);
}
