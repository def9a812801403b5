import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { Gauge, type Logger, type Registry } from "@datalab/shared";
import type { Source, SourceStatus } from "../common/types";
import { type BrokerConnection, clientAuth } from "./config";

/**
 * What the broker says it dropped: Mosquitto counts the PUBLISH messages it gave up on (a
 * client's queue past `max_queued_messages`, or its in-flight limits) and republishes the total
 * under `$SYS` every `sys_interval` (10 s by default). A drop for the gateway's session is a
 * reading lost before the gateway could see it, so the gateway shows the count as a metric and
 * warns when it grows. The counter covers every client of the broker; a broker without `$SYS`
 * (sys_interval 0, an ACL, or not Mosquitto) leaves it unknown (-1).
 *
 * Shaped as a source for its lifecycle (started and stopped with the MQTT source, shown in the
 * status) on a connection of its own, so that the MQTT source's commit-then-acknowledge path
 * stays untouched; it never produces readings.
 */
export const BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped";

export interface BrokerDropsOptions extends BrokerConnection {
  clientId: string;
  registry: Registry;
  logger: Logger;
  now?: () => number;
}

export class BrokerDropsMonitor implements Source {
  readonly name = "mqtt-broker";
  private client: MqttClient | undefined;
  private st: SourceStatus = { name: this.name, state: "starting" };
  private last: number | undefined;
  private readonly gauge: Gauge;

  constructor(private readonly o: BrokerDropsOptions) {
    this.gauge = new Gauge({
      name: "datalab_gateway_mqtt_broker_dropped_messages",
      help:
        `Messages the MQTT broker dropped since it started (${BROKER_DROPPED_TOPIC}, every client's: queue or ` +
        `in-flight limits); -1 until the broker publishes it (Mosquitto: when it changes, kept for 60 s)`,
      registers: [o.registry],
    });
    this.gauge.set(-1);
  }

  start(): Promise<void> {
    const o = this.o;
    const options: IClientOptions = {
      clientId: o.clientId,
      clean: true,
      reconnectPeriod: 5_000,
      connectTimeout: 10_000,
      log: () => undefined,
      ...clientAuth(o),
    };
    const client = mqtt.connect(o.url, options);
    this.client = client;
    client.on("error", (err) => (this.st = { ...this.st, lastError: err.message }));
    client.on("offline", () => (this.st = { ...this.st, state: "disconnected" }));
    client.on("connect", () => {
      this.st = { ...this.st, state: "connected" };
      client.subscribe(BROKER_DROPPED_TOPIC, { qos: 0 }, (err, granted) => {
        if (err || granted?.[0]?.qos === 128)
          this.st = { ...this.st, lastError: `the broker refuses ${BROKER_DROPPED_TOPIC}: its drops are unknown` };
      });
    });
    client.on("message", (topic, payload, packet) => {
      if (topic === BROKER_DROPPED_TOPIC) this.observe(Number(payload.toString()), !packet.retain);
    });
    // Never holds the gateway's start: the count is informative, not needed to ingest.
    return Promise.resolve();
  }

  /**
   * A value of the broker's counter. Mosquitto publishes it when it changes, so a live
   * (not retained) value above zero means messages were dropped while the gateway watched.
   */
  observe(total: number, live: boolean): void {
    if (!Number.isFinite(total) || total < 0) return;
    const before = this.last;
    this.last = total;
    this.gauge.set(total);
    if (!live || total === 0 || total === before) return;
    const newly = before !== undefined && total > before ? total - before : undefined;
    const at = new Date((this.o.now ?? Date.now)()).toISOString();
    const warning =
      `the MQTT broker dropped messages while the gateway ran (${newly ?? "some"} at ${at}; ${total} since the ` +
      "broker started, every client's): readings for this gateway among them are lost before it sees them; " +
      "raise max_queued_messages, see docs/raspberry-pi.md";
    this.st = { ...this.st, warning };
    this.o.logger.warn(
      { brokerDroppedTotal: total, newly, topic: BROKER_DROPPED_TOPIC },
      "MQTT broker dropped messages (max_queued_messages or in-flight limits)",
    );
  }

  async stop(): Promise<void> {
    this.st = { ...this.st, state: "stopped" };
    await this.client?.endAsync(true);
  }

  status(): SourceStatus {
    return this.st;
  }
}
