import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { Counter, Gauge, errorMessage, type Logger, type Registry } from "@datalab/shared";
import type { Ingest, MessageDecoder } from "../../ingest/index";
import { deliveryDigest, type Delivery, type DeliveryLog, type DeliveryOwner } from "../../outbox/deliveries";
import type { Source, SourceStatus } from "../common/types";
import { type BrokerConnection, clientAuth } from "./config";
import { type PausableStream, ReadPause } from "./read-pause";
import { effectiveFilters, topicMatches } from "./topics";

export interface MqttRoute {
  /** MQTT topic filter, e.g. `sensors/#` or `rtl_433/+/events`. */
  filter: string;
  decoder: MessageDecoder;
}

export interface MqttSourceOptions extends BrokerConnection {
  routes: MqttRoute[];
  clientId: string;
  /**
   * Persistent session: QoS 1 and a fixed client id, so Mosquitto keeps messages for the
   * gateway while it restarts, and resends what it was not acknowledged. MQTT 5 needs a
   * session expiry interval for that; without one, `clean: false` still ends the session at
   * disconnect.
   */
  persistentSession: boolean;
  /**
   * MQTT 5 Receive Maximum: QoS 1 messages the broker may send before it has their
   * acknowledgements. Acknowledgements wait for the commit, so this is what the broker can
   * send during one commit.
   */
  receiveMaximum?: number;
  /**
   * The broker's in-flight window for an MQTT 3.1.1 session, which the client cannot set
   * (Mosquitto's `max_inflight_messages`, 20 by default): a group commits early when it is
   * nearly used up.
   */
  inflightWindow?: number;
  /** The committed deliveries, to tell a resend of a message already kept. */
  deliveries?: DeliveryLog;
  registry?: Registry;
  sessionExpirySeconds: number;
  /** MQTT 5 (default) or 3.1.1 (4), for brokers without MQTT 5 such as the demo's embedded aedes. */
  protocolVersion?: 4 | 5;
  qos: 0 | 1;
  /**
   * When messages arrive one or two at a time, pause reading the socket this long after each
   * read, so the next read takes what gathered meanwhile (0: read each message at once).
   */
  readPauseMs?: number;
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

/** A group commits early once this share of the in-flight window waits for its acknowledgement. */
const WINDOW_COMMIT_SHARE = 0.75;

/** A PUBACK with reason code 0 and no properties: the same four bytes in MQTT 3.1.1 and 5. */
const PUBACK_BYTES = 4;

/** Stands in for an error so mqtt.js sends no PUBACK itself and goes on to the next packet. */
const ACK_AFTER_COMMIT = new Error("acknowledged after the commit");

interface MqttDelivery extends Delivery {
  /** The connection to acknowledge on: the one the message came on, or the one it was resent on. */
  conn: object;
}

export class MqttSource implements Source, DeliveryOwner {
  readonly name = "mqtt";
  private client: MqttClient | undefined;
  private st: SourceStatus = { name: "mqtt", state: "starting" };
  private readonly topics = new Map<string, TopicRoute | null>();
  private readonly paced = new WeakSet<object>();
  /** The read pause of the current connection, when there is one. */
  private readPause: ReadPause | undefined;
  /** QoS 1 messages of the current connection waiting for their commit (and so their acknowledgement). */
  private unacked = 0;
  /** Deliveries handed to ingest and not yet committed or given back, by packet id. */
  /**
   * Deliveries waiting for their commit, by packet id: an array rather than a Map, whose
   * tables were reallocated as a flood's thousand waiting ids came and went.
   */
  private readonly pending: (MqttDelivery | undefined)[] = new Array(65_536).fill(undefined);
  private readonly commitAt: number;
  private readonly resends: Counter<"outcome"> | undefined;
  private readonly staleAcks: Counter | undefined;
  private readonly returnedCount: Counter | undefined;
  /** Messages of the current connection were given back unacknowledged: reconnect once commits work. */
  private mustResume = false;

  constructor(
    private readonly opts: MqttSourceOptions,
    private readonly ingest: Ingest,
  ) {
    const window = (opts.protocolVersion ?? 5) === 5 ? (opts.receiveMaximum ?? 65_535) : (opts.inflightWindow ?? 20);
    this.commitAt = Math.max(1, Math.floor(window * WINDOW_COMMIT_SHARE));
    if (!opts.persistentSession) {
      this.st.warning =
        "clean MQTT session: what sensors publish while the gateway is not connected (a restart, an upgrade, a " +
        "crash) is lost";
    }
    if (opts.registry) {
      const r = [opts.registry];
      this.resends = new Counter({
        name: "datalab_gateway_mqtt_resends_total",
        help:
          "QoS 1 messages the broker resent (DUP): already_committed (kept before its acknowledgement got out; " +
          "acknowledged again, not stored twice), awaiting_commit (its first copy still waits for the commit; " +
          "acknowledged with it) or stored",
        labelNames: ["outcome"],
        registers: r,
      });
      this.staleAcks = new Counter({
        name: "datalab_gateway_mqtt_acks_withheld_total",
        help:
          "Committed messages not acknowledged because their connection had closed: the broker resends them and " +
          "they are recognised as already committed",
        registers: r,
      });
      this.returnedCount = new Counter({
        name: "datalab_gateway_mqtt_returned_total",
        help:
          "QoS 1 messages let go unacknowledged while outbox commits failed; the broker resends them after the " +
          "reconnect that follows the next good commit",
        registers: r,
      });
      const source = this;
      new Gauge({
        name: "datalab_gateway_mqtt_unacked",
        help:
          "QoS 1 messages received on the current connection and waiting for their commit before they are " +
          "acknowledged",
        registers: r,
        collect() {
          this.set(source.unacked);
        },
      });
    }
  }

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
      // mqtt-packet's number cache (65,536 small Buffers) saves an allocation per packet sent;
      // the gateway sends almost nothing (acks, pings).
      writeCache: false,
      // mqtt.js traces every packet through the `debug` module (several calls per message,
      // each checking whether DEBUG names it); the gateway logs what matters itself.
      log: () => undefined,
      ...((o.protocolVersion ?? 5) === 5
        ? {
            properties: {
              ...(o.receiveMaximum ? { receiveMaximum: o.receiveMaximum } : {}),
              ...(o.persistentSession ? { sessionExpiryInterval: o.sessionExpirySeconds } : {}),
            },
          }
        : {}),
      ...clientAuth(o),
    };
    if (this.st.warning) o.logger.warn({ setting: "DATALAB_MQTT_PERSISTENT=false" }, this.st.warning);
    const client = mqtt.connect(o.url, options);
    this.client = client;
    // Every publish comes here instead of the 'message' event, so that a QoS 1 message is
    // acknowledged only once it is committed (see settled).
    client.handleMessage = (packet, done) => this.onPublish(packet, done);
    client.on("error", (err) => {
      this.st = { ...this.st, lastError: err.message };
      o.logger.warn({ err: err.message }, "MQTT error");
    });
    client.on("offline", () => {
      if (this.st.state === "connected") o.logger.warn("MQTT broker unreachable; reconnecting");
      this.st = { ...this.st, state: "disconnected", subscribed: false };
    });
    return new Promise((resolve) => {
      client.on("connect", (ack) => {
        this.st = { ...this.st, name: "mqtt", state: "connected", subscribed: false };
        delete this.st.lastError;
        // What was unacknowledged on the last connection, the broker resends on this one.
        this.unacked = 0;
        this.mustResume = false;
        this.startReadPause(client);
        o.logger.info(
          { url: o.url, sessionPresent: ack.sessionPresent, topics: o.routes.map((r) => r.filter) },
          "MQTT connected",
        );
        // With a session present the broker still has our subscriptions; subscribing again is harmless.
        client.subscribe(effectiveFilters(o.routes.map((r) => r.filter)), { qos: o.qos }, (err) => {
          if (err) {
            this.st = { ...this.st, lastError: `subscribe failed: ${err.message}` };
            o.logger.error({ err: err.message }, "MQTT subscribe failed");
          } else if (client === this.client && client.connected) this.st = { ...this.st, subscribed: true };
          resolve();
        });
      });
      // Do not hold start-up hostage to the broker: it may come later, the client retries.
      setTimeout(resolve, 3_000).unref();
    });
  }

  /** Reads pause while messages trickle in (read-pause.ts); one pause per connection's socket. */
  private startReadPause(client: MqttClient): void {
    const stream = client.stream as unknown as PausableStream | undefined;
    const pauseMs = this.opts.readPauseMs ?? 0;
    if (!stream || pauseMs === 0 || this.paced.has(stream)) return;
    this.paced.add(stream);
    this.readPause = new ReadPause(stream, { pauseMs });
  }

  /**
   * mqtt.js hands every PUBLISH here before it would acknowledge it. A QoS 1 message goes to
   * ingest with a delivery, and `done` gets a stand-in error: mqtt.js then sends no PUBACK
   * and goes on to the next packet at once, so messages keep flowing while their group waits
   * for its commit; `settled` acknowledges them after it. A resend (DUP) of a message
   * committed before its acknowledgement got out is acknowledged again and not stored twice.
   */
  private onPublish(packet: IPublishPacket, done: (err?: Error) => void): void {
    this.readPause?.count();
    const topic = packet.topic;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : (packet.payload as Buffer);
    const r = this.routeOf(topic);
    if (packet.qos !== 1 || packet.messageId === undefined) {
      if (r) this.hand(r, payload, undefined);
      done();
      return;
    }
    const conn = this.client?.stream as object;
    const digest = deliveryDigest(topic, payload);
    const log = this.opts.deliveries;
    if (packet.dup && log?.kept(packet.messageId, digest)) {
      this.resends?.inc({ outcome: "already_committed" });
      this.writeAcks([packet.messageId]);
      done();
      return;
    }
    const waiting = packet.dup ? this.pending[packet.messageId] : undefined;
    if (waiting && waiting.digest === digest) {
      // Resent after a reconnect while its first copy still waits for the commit: that copy
      // stays the one stored, and its acknowledgement goes on this connection instead.
      this.resends?.inc({ outcome: "awaiting_commit" });
      waiting.conn = conn;
      this.unacked++;
      done(ACK_AFTER_COMMIT);
      return;
    }
    if (packet.dup) this.resends?.inc({ outcome: "stored" });
    // A new message under this id: the broker had the acknowledgement of the one before.
    else log?.released(packet.messageId);
    if (!r) {
      this.writeAcks([packet.messageId]);
      done();
      return;
    }
    const delivery: MqttDelivery = { id: packet.messageId, digest, owner: this, conn };
    this.pending[delivery.id] = delivery;
    this.unacked++;
    this.hand(r, payload, delivery);
    done(ACK_AFTER_COMMIT);
    // The broker stops sending when its in-flight window is full: commit before that.
    if (this.unacked >= this.commitAt) this.ingest.commitNow();
  }

  private hand(r: TopicRoute, payload: Buffer, delivery: MqttDelivery | undefined): void {
    try {
      this.ingest.receive(r.source, payload, r.decoder, r.ctx, undefined, delivery);
    } catch (err) {
      // Ingest never throws by design; if it does, keep the client alive and say so. The
      // message is not acknowledged, so the broker resends it on the next connection; it
      // waits for no commit, so that resend is handed on rather than taken for a copy.
      if (delivery && this.pending[delivery.id] === delivery) this.pending[delivery.id] = undefined;
      this.opts.logger.error({ err: errorMessage(err), topic: r.ctx.topic }, "ingest failed");
    }
  }

  /** The commit holding these messages is done: acknowledge those of the current connection. */
  settled(deliveries: readonly Delivery[]): void {
    const conn = this.client?.stream as object | undefined;
    const ids: number[] = [];
    let stale = 0;
    for (const d of deliveries as readonly MqttDelivery[]) {
      if (this.pending[d.id] === d) this.pending[d.id] = undefined;
      if (d.conn === conn) ids.push(d.id);
      else stale++;
    }
    if (stale > 0) this.staleAcks?.inc(stale);
    this.unacked = Math.max(0, this.unacked - ids.length);
    this.writeAcks(ids);
    if (this.mustResume) {
      // The broker counts the given-back messages as in flight on this connection and
      // resends them only on a new one; without it, they would hold the window for good.
      this.mustResume = false;
      this.opts.logger.warn(
        "outbox commits work again: reconnecting so the broker resends the messages let go while they failed",
      );
      (this.client?.stream as { destroy?: () => void } | undefined)?.destroy?.();
    }
  }

  returned(deliveries: readonly Delivery[]): void {
    const conn = this.client?.stream as object | undefined;
    let current = 0;
    for (const d of deliveries as readonly MqttDelivery[]) {
      if (this.pending[d.id] === d) this.pending[d.id] = undefined;
      if (d.conn === conn) current++;
    }
    this.returnedCount?.inc(deliveries.length);
    this.unacked = Math.max(0, this.unacked - current);
    if (current > 0) this.mustResume = true;
  }

  /** PUBACKs for these packet ids, in one write. */
  private writeAcks(ids: readonly number[]): void {
    const stream = this.client?.stream as
      | { write(b: Buffer): boolean; destroyed?: boolean; writable?: boolean }
      | undefined;
    if (ids.length === 0 || !stream || stream.destroyed || stream.writable === false) return;
    const buf = Buffer.allocUnsafe(ids.length * PUBACK_BYTES);
    let at = 0;
    for (const id of ids) {
      buf[at] = 0x40; // PUBACK
      buf[at + 1] = 2; // remaining length: the packet id
      buf.writeUInt16BE(id, at + 2);
      at += PUBACK_BYTES;
    }
    stream.write(buf);
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

  async stop(): Promise<void> {
    this.st = { ...this.st, state: "stopped" };
    this.readPause?.resumeNow();
    const c = this.client;
    if (!c) return;
    // Commit what waits, so its acknowledgements leave before the connection closes (else
    // the broker resends those messages at the next start, recognised as already kept).
    this.ingest.commitNow();
    await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }

  status(): SourceStatus {
    return this.st;
  }
}
