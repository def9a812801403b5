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

/** What a topic resolves to, computed once per topic (see MqttSource.routeOf). */
interface TopicRoute {
  decoder: MessageDecoder;
  source: string;
  ctx: { topic: string; sensorIdHint?: string };
}

/** Topics remembered at most (sensors publish on a few topics each; a flood of new ones only costs the lookup). */
const TOPIC_CACHE_SIZE = 4_096;

/** Acks held back at most before they are written (see batchAcks). */
const ACK_FLUSH = 16;

export class MqttSource implements Source {
  readonly name = "mqtt";
  private client: MqttClient | undefined;
  private st: SourceStatus = { name: "mqtt", state: "starting" };
  private readonly topics = new Map<string, TopicRoute | null>();
  private readonly corked = new WeakSet<object>();
  /** Called per message: lets the acks held in a corked socket go every ACK_FLUSH messages. */
  private ackFlush: () => void = () => undefined;

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
      // mqtt.js traces every packet through the `debug` module (several calls per message,
      // each checking whether DEBUG names it); the gateway logs what matters itself.
      log: () => undefined,
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
        this.batchAcks(client);
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

  /**
   * mqtt.js writes each PUBACK to the socket as it handles the message: one system call per
   * message. The socket is corked from the arrival of a chunk of messages, and uncorked every
   * ACK_FLUSH messages and once the event loop has handled the chunk (setImmediate runs after
   * the nextTick chain mqtt.js works through a chunk with), so acks leave in small groups:
   * few writes, and the broker, which sends only so many unacknowledged messages
   * (`max_inflight_messages`), is never left waiting for a whole chunk's acks.
   */
  private batchAcks(client: MqttClient): void {
    const stream = client.stream as unknown as { cork?: () => void; uncork?: () => void; on: (e: string, f: () => void) => void } | undefined;
    if (!stream?.cork || !stream.uncork || this.corked.has(stream)) return;
    this.corked.add(stream);
    let corked = false;
    let held = 0;
    const uncork = () => {
      if (!corked) return;
      corked = false;
      held = 0;
      stream.uncork!();
    };
    stream.on("data", () => {
      if (corked) return;
      corked = true;
      stream.cork!();
      setImmediate(uncork);
    });
    this.ackFlush = () => {
      if (corked && ++held >= ACK_FLUSH) {
        stream.uncork!();
        held = 0;
        stream.cork!();
      }
    };
  }

  /** The route, source name and decoder context of a topic, built once and kept (bounded). */
  private routeOf(topic: string): TopicRoute | null {
    let r = this.topics.get(topic);
    if (r !== undefined) return r;
    const route = this.opts.routes.find((x) => topicMatches(x.filter, topic));
    if (route) {
      const levels = topic.split("/");
      const hint = levels.length > 1 ? levels[levels.length - 1] : undefined;
      r = { decoder: route.decoder, source: `mqtt:${topic}`, ctx: { topic, ...(hint ? { sensorIdHint: hint } : {}) } };
    } else r = null;
    if (this.topics.size >= TOPIC_CACHE_SIZE) this.topics.clear();
    this.topics.set(topic, r);
    return r;
  }

  private onMessage(topic: string, payload: Buffer): void {
    this.ackFlush();
    const r = this.routeOf(topic);
    if (!r) return;
    try {
      this.ingest.receive(r.source, payload, r.decoder, r.ctx);
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
