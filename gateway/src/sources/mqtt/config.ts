import { readFileSync } from "node:fs";
import type { IClientOptions } from "mqtt";
import { z } from "zod";
import { bool, ConfigError, type ConfigOf, field, intIn, stringList } from "@datalab/shared";
import { isMessageFormat, MESSAGE_FORMATS, type MessageFormat } from "@datalab/sensors";

/**
 * The MQTT source's part of the gateway's config: DATALAB_MQTT_* in the environment, the same
 * keys in the config file. The broker's address (DATALAB_MQTT_URL) is shared with the hub.
 */
export const mqttFields = {
  mqttEnabled: field("DATALAB_MQTT_ENABLED", bool(true), "read sensors from the MQTT broker"),
  mqttTopics: field(
    "DATALAB_MQTT_TOPICS",
    stringList(["sensors", "sensors/#"]),
    "topic filters, comma-separated, each filter[:format] naming its payloads' format as a serial port names " +
      "its protocol: jsonl (DataLab JSON + SenML, the default), rtl433, mysensors",
  ),
  mqttRtl433Topics: field(
    "DATALAB_MQTT_RTL433_TOPICS",
    stringList(["rtl_433/+/events"]),
    "topic filters with rtl_433 events, comma-separated (empty: none)",
  ),
  mqttClientId: field(
    "DATALAB_MQTT_CLIENT_ID",
    z.string().optional(),
    "MQTT client id (default: datalab-gateway-<gateway id>)",
  ),
  mqttQos: field(
    "DATALAB_MQTT_QOS",
    intIn(0, 1, 1),
    "QoS of the gateway's subscriptions: 1 (default) lets the broker pace delivery by acks instead of dropping " +
      "a lagging client's QoS 0 messages",
  ),
  mqttPersistentSession: field(
    "DATALAB_MQTT_PERSISTENT",
    bool(true),
    "persistent MQTT session (QoS 1, fixed client id): the broker keeps and resends what the gateway has not " +
      "committed, through restarts and crashes; false loses what is published while the gateway is away",
  ),
  mqttReceiveMaximum: field(
    "DATALAB_MQTT_RECEIVE_MAXIMUM",
    intIn(1, 32_767, 2_000),
    "MQTT 5: QoS 1 messages the broker may send ahead of their acknowledgement, which waits for the commit",
  ),
  mqttInflightWindow: field(
    "DATALAB_MQTT_INFLIGHT_WINDOW",
    intIn(1, 32_767, 20),
    "MQTT 3.1.1: the broker's in-flight window (Mosquitto's max_inflight_messages); a commit group closes " +
      "when it is nearly used up",
  ),
  mqttProtocol: field(
    "DATALAB_MQTT_PROTOCOL",
    z.enum(["5", "3.1.1"], { error: "expected 5 or 3.1.1" }).default("5"),
    "MQTT protocol version spoken to the broker (3.1.1 for brokers without MQTT 5)",
  ),
  mqttReadPauseMs: field(
    "DATALAB_MQTT_READ_PAUSE_MS",
    intIn(0, 1_000, 100),
    "when MQTT messages come a few at a time, let them gather this long before reading on: fewer wake-ups " +
      "(adds at most this to latency; 0: read each at once)",
  ),
  mqttSessionExpiry: field(
    "DATALAB_MQTT_SESSION_EXPIRY",
    intIn(0, 4294967295, 86_400),
    "MQTT 5 session expiry in seconds, for the persistent session",
  ),
  mqttUsername: field("DATALAB_MQTT_USERNAME", z.string().optional(), "MQTT user name"),
  mqttPassword: field("DATALAB_MQTT_PASSWORD", z.string().optional(), "MQTT password", { secret: true }),
  mqttPasswordFile: field("DATALAB_MQTT_PASSWORD_FILE", z.string().optional(), "file holding the MQTT password"),
  mqttTlsCa: field("DATALAB_MQTT_TLS_CA", z.string().optional(), "CA certificate file for mqtts://"),
  mqttTlsCert: field("DATALAB_MQTT_TLS_CERT", z.string().optional(), "client certificate file for mqtts://"),
  mqttTlsKey: field("DATALAB_MQTT_TLS_KEY", z.string().optional(), "client key file for mqtts://"),
} as const;

/** What the MQTT sources read from the gateway's config. */
export type MqttConfig = ConfigOf<typeof mqttFields> & {
  readonly mqttUrl: string;
  readonly gatewayId: string;
};

/** How to reach the broker: address, credentials (the password file read now), TLS files. */
export interface BrokerConnection {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export function brokerConnection(c: MqttConfig): BrokerConnection {
  return {
    url: c.mqttUrl,
    username: c.mqttUsername,
    password: c.mqttPassword ?? (c.mqttPasswordFile ? readFileSync(c.mqttPasswordFile, "utf8").trim() : undefined),
    caFile: c.mqttTlsCa,
    certFile: c.mqttTlsCert,
    keyFile: c.mqttTlsKey,
  };
}

/** The credentials and TLS files of a connection as mqtt.js takes them (the files read now). */
export function clientAuth(b: BrokerConnection): IClientOptions {
  return {
    ...(b.username ? { username: b.username } : {}),
    ...(b.password ? { password: b.password } : {}),
    ...(b.caFile ? { ca: readFileSync(b.caFile) } : {}),
    ...(b.certFile ? { cert: readFileSync(b.certFile) } : {}),
    ...(b.keyFile ? { key: readFileSync(b.keyFile) } : {}),
  };
}

/** The gateway's MQTT client id: configured, or one per gateway id. */
export function mqttClientId(c: Pick<MqttConfig, "mqttClientId" | "gatewayId">): string {
  return c.mqttClientId ?? `datalab-gateway-${c.gatewayId}`;
}

export interface TopicFormat {
  filter: string;
  format: MessageFormat;
}

/**
 * `filter[:format]` from DATALAB_MQTT_TOPICS, e.g. `sensors/#`, `rtl_433/+/events:rtl433`,
 * `mysensors/out:mysensors`: as a serial port names its protocol (`path:protocol`), a topic
 * names the format of its payloads; DataLab JSON (`jsonl`) when it names none. The format is
 * taken after the last colon only when it is a format name (topics may contain colons).
 */
function topicFormat(entry: string, fallback: MessageFormat = "jsonl"): TopicFormat {
  const colon = entry.lastIndexOf(":");
  if (colon > 0) {
    const format = entry.slice(colon + 1).trim();
    if (isMessageFormat(format)) return { filter: entry.slice(0, colon).trim(), format };
    if (/^[a-z0-9]+$/.test(format) && !/[+#/]/.test(format)) {
      throw new ConfigError([
        `DATALAB_MQTT_TOPICS: "${entry}": unknown format "${format}"; ` +
          `expected one of ${MESSAGE_FORMATS.join(", ")}`,
      ]);
    }
  }
  return { filter: entry.trim(), format: fallback };
}

/** Every subscribed filter with its payloads' format, in the order the MQTT source matches them. */
export function mqttTopicFormats(c: Pick<MqttConfig, "mqttTopics" | "mqttRtl433Topics">): TopicFormat[] {
  return [
    ...c.mqttRtl433Topics.map((filter) => topicFormat(filter, "rtl433")),
    ...c.mqttTopics.map((entry) => topicFormat(entry)),
  ];
}
