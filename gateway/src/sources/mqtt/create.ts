import type { Logger, Registry } from "@datalab/shared";
import type { UnitConfig } from "@datalab/sensors";
import type { Ingest } from "../../ingest/index";
import { fieldCounter } from "../../metrics/index";
import type { DeliveryLog } from "../../outbox/deliveries";
import type { Source } from "../common/types";
import { BrokerDropsMonitor } from "./broker-drops";
import { messageDecoder } from "./decoder";
import { brokerConnection, type MqttConfig, mqttClientId, mqttTopicFormats } from "./config";
import { type MqttRoute, MqttSource } from "./source";

export interface MqttDeps {
  ingest: Ingest;
  registry: Registry;
  logger: Logger;
  /** Units the operator configured per metric (DATALAB_UNITS). */
  units: UnitConfig;
  /** The committed deliveries, to tell a resend of a message already kept. */
  deliveries?: DeliveryLog | undefined;
  now?: () => number;
}

/**
 * The MQTT source the config asks for, and beside it the broker's own count of messages it
 * dropped ($SYS), on a connection of its own. None when DATALAB_MQTT_ENABLED is false.
 */
export function createMqttSources(config: MqttConfig, deps: MqttDeps): Source[] {
  if (!config.mqttEnabled) return [];
  const broker = brokerConnection(config);
  const clientId = mqttClientId(config);
  // A topic names its payloads' format as a serial port names its protocol; one decoder per format.
  const fields = fieldCounter(deps.registry);
  const decoders = new Map<string, MqttRoute["decoder"]>();
  const routes: MqttRoute[] = mqttTopicFormats(config).map(({ filter, format }) => {
    let decoder = decoders.get(format);
    if (decoder === undefined) {
      decoder = messageDecoder(format, { units: deps.units }, fields);
      decoders.set(format, decoder);
    }
    return { filter, decoder };
  });
  return [
    new MqttSource(
      {
        ...broker,
        routes,
        clientId,
        persistentSession: config.mqttPersistentSession,
        receiveMaximum: config.mqttReceiveMaximum,
        inflightWindow: config.mqttInflightWindow,
        ...(deps.deliveries ? { deliveries: deps.deliveries } : {}),
        registry: deps.registry,
        sessionExpirySeconds: config.mqttSessionExpiry,
        protocolVersion: config.mqttProtocol === "3.1.1" ? 4 : 5,
        qos: config.mqttPersistentSession ? 1 : (config.mqttQos as 0 | 1),
        readPauseMs: config.mqttReadPauseMs,
        logger: deps.logger.child({ part: "mqtt" }),
      },
      deps.ingest,
    ),
    new BrokerDropsMonitor({
      ...broker,
      clientId: `${clientId}-sys`,
      registry: deps.registry,
      logger: deps.logger.child({ part: "mqtt-broker" }),
      ...(deps.now ? { now: deps.now } : {}),
    }),
  ];
}
