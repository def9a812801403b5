import { readFileSync } from "node:fs";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { errorMessage, type Logger } from "@datalab/shared";
import type { Ingest } from "../ingest";
import type { MessageDecoder } from "../decode/index";
import type { Source, SourceStatus } from "./types";

export interface MqttRoute {
  /** MQTT topic filter, e.g. `sensors/#` or `rtl_433/+/events`. */
  filter: string;
  decoder: MessageDecoder;
}

export interface MqttSourceOptions {
  url: string;
  routes: MqttRoute[];
  clientId: string;
  /**
   * Persistent session: QoS 1 and a fixed client id, so Mosquitto keeps messages for the
   * gateway while it restarts. MQTT 5 needs a session expiry interval for that; without
   * one, `clean: false` still ends the session at disconnect.
   */
  persistentSession: boolean;
  sessionExpirySeconds: number;
  /** MQTT 5 (default) or 3.1.1 (4), for brokers without MQTT 5 such as the demo's embedded aedes. */
  protocolVersion?: 4 | 5;
  qos: 0 | 1;
  username?: string | undefined;
  password?: string | undefined;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  logger: Logger;
}

export class MqttSource implements Source {
  readonly name = "mqtt";
  private client: MqttClient | undefined;
  private st: SourceStatus = { name: "mqtt", state: "starting" };

  constructor(
    private readonly opts: MqttSourceOptions,
    private readonly ingest: Ingest,
  ) {}

  start(): Promise<void> {
    const o = this.opts;
    const options: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion ?? 5,
      clean: !o.persistentSession,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      keepalive: 30,
      resubscribe: true,
      // mqtt-packet's number cache is 65,536 small Buffers (about 6 MiB of heap) to save an
      // allocation per packet sent; the gateway sends almost nothing (acks, pings).
      writeCache: false,
      ...(o.persistentSession && (o.protocolVersion ?? 5) === 5 ? { properties: { sessionExpiryInterval: o.sessionExpirySeconds } } : {}),
      ...(o.username ? { username: o.username } : {}),
      ...(o.password ? { password: o.password } : {}),
      ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}),
      ...(o.certFile ? { cert: readFileSync(o.certFile) } : {}),
      ...(o.keyFile ? { key: readFileSync(o.keyFile) } : {}),
    };
    const client = mqtt.connect(o.url, options);
    this.client = client;
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    client.on("error", (err) => {
      this.st = { ...this.st, lastError: err.message };
      o.logger.warn({ err: err.message }, "MQTT error");
    });
    client.on("offline", () => {
      if (this.st.state === "connected") o.logger.warn("MQTT broker unreachable; reconnecting");
      this.st = { ...this.st, state: "disconnected" };
    });
    return new Promise((resolve) => {
      client.on("connect", (ack) => {
        this.st = { name: "mqtt", state: "connected" };
        o.logger.info({ url: o.url, sessionPresent: ack.sessionPresent, topics: o.routes.map((r) => r.filter) }, "MQTT connected");
        // With a session present the broker still has our subscriptions; subscribing again is harmless.
        client.subscribe(
          effectiveFilters(o.routes.map((r) => r.filter)),
          { qos: o.qos },
          (err) => {
            if (err) o.logger.error({ err: err.message }, "MQTT subscribe failed");
            resolve();
          },
        );
      });
      // Do not hold start-up hostage to the broker: it may come later, the client retries.
      setTimeout(resolve, 3_000).unref();
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const route = this.opts.routes.find((r) => topicMatches(r.filter, topic));
    if (!route) return;
    const levels = topic.split("/");
    const hint = levels.length > 1 ? levels[levels.length - 1] : undefined;
    try {
      this.opts.logger.trace({ topic, bytes: payload.byteLength }, "mqtt message");
      this.ingest.receive(`mqtt:${topic}`, payload, route.decoder, { topic, ...(hint ? { sensorIdHint: hint } : {}) });
    } catch (err) {
      // Ingest never throws by design; if it does, keep the client alive and say so.
      this.opts.logger.error({ err: errorMessage(err), topic }, "ingest failed");
    }
  }

  async stop(): Promise<void> {
    this.st = { ...this.st, state: "stopped" };
    const c = this.client;
    if (!c) return;
    await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }

  status(): SourceStatus {
    return this.st;
  }
}

/** MQTT topic filter matching (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * `sensors/#` also matches `sensors`: subscribing to both could make the broker deliver a
 * message twice. Drop a wildcard-free filter that another filter already covers.
 */
export function effectiveFilters(filters: readonly string[]): string[] {
  const unique = [...new Set(filters)];
  return unique.filter((f) => /[+#]/.test(f) || !unique.some((g) => g !== f && topicMatches(g, f)));
}
