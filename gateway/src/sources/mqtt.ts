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
  /**
   * When messages arrive one or two at a time, pause reading the socket this long after each
   * read, so the next read takes what gathered meanwhile (0: read each message at once).
   */
  readPauseMs?: number;
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

/** The message rate that decides whether reads pause is measured over windows this long. */
const RATE_WINDOW_MS = 1_000;

/**
 * Reads pause while fewer than this many messages arrive per pause, on average over the last
 * window, and a read that brings this many ends the pausing. While reads pause, the source
 * can still take in the broker's whole in-flight window per pause (Mosquitto's default is 20
 * QoS 1 messages, more than this), so a rising rate shows: a backlog brings full reads.
 */
const TRICKLE_PER_PAUSE = 15;

export class MqttSource implements Source {
  readonly name = "mqtt";
  private client: MqttClient | undefined;
  private st: SourceStatus = { name: "mqtt", state: "starting" };
  private readonly topics = new Map<string, TopicRoute | null>();
  private readonly corked = new WeakSet<object>();
  /** Called per message: lets the acks held in a corked socket go every ACK_FLUSH messages. */
  private ackFlush: () => void = () => undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  /** Ends a read pause at once (stop needs the socket reading to see it close). */
  private resumeNow: (() => void) | undefined;

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
   *
   * At low rates each message is a wake-up of its own (a read, a parse, an ack written), and
   * those wake-ups, not the messages, are what the CPU goes to: 100 sensors at 1 Hz cost 6 %
   * of a core here, a bare node receiving the same packets 2 %. So while the rate is a
   * trickle (fewer than TRICKLE_PER_PAUSE messages per `readPauseMs` over the last second),
   * the socket stops reading for `readPauseMs` after each read, and the next read takes what
   * gathered meanwhile, in one wake-up. Messages wait in the kernel and at the broker,
   * unacknowledged. The price is latency, at most `readPauseMs`, and a burst that starts
   * during a pause waits at the broker for that long (within `max_queued_messages`). A read
   * that brings TRICKLE_PER_PAUSE messages or more ends the pausing at once, and above that
   * rate reads never pause, so a flood is not slowed.
   */
  private batchAcks(client: MqttClient): void {
    type Socket = { cork?: () => void; uncork?: () => void; pause(): void; resume(): void; on: (e: string, f: () => void) => void };
    const stream = client.stream as unknown as Socket | undefined;
    if (!stream?.cork || !stream.uncork || this.corked.has(stream)) return;
    this.corked.add(stream);
    const pauseMs = this.opts.readPauseMs ?? 0;
    let corked = false;
    let held = 0;
    let inChunk = 0; // messages handed on since the last afterChunk
    let windowStart = performance.now();
    let windowCount = 0;
    let trickle = false;
    const afterChunk = () => {
      if (!corked) return;
      corked = false;
      held = 0;
      stream.uncork!();
      if (pauseMs === 0) return;
      // Messages since the last chunk was handled: mqtt.js may hand a chunk's messages on
      // after this runs, so they are counted here, not per 'data' event.
      const read = inChunk;
      inChunk = 0;
      windowCount += read;
      const now = performance.now();
      if (read >= TRICKLE_PER_PAUSE) {
        // One read brought a pause's worth or more: not a trickle, whatever the window says.
        trickle = false;
        windowStart = now;
        windowCount = 0;
      } else if (now - windowStart >= RATE_WINDOW_MS) {
        trickle = windowCount * pauseMs < TRICKLE_PER_PAUSE * (now - windowStart);
        windowStart = now;
        windowCount = 0;
      }
      if (trickle && this.resumeTimer === undefined) {
        const stopped = pauseReading(stream);
        this.resumeNow = () => {
          clearTimeout(this.resumeTimer);
          this.resumeTimer = undefined;
          this.resumeNow = undefined;
          resumeReading(stream, stopped);
        };
        this.resumeTimer = setTimeout(this.resumeNow, pauseMs);
      }
    };
    stream.on("data", () => {
      if (corked) return;
      corked = true;
      stream.cork!();
      setImmediate(afterChunk);
    });
    this.ackFlush = () => {
      inChunk++;
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
    this.resumeNow?.();
    const c = this.client;
    if (!c) return;
    await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }

  status(): SourceStatus {
    return this.st;
  }
}

type SocketHandle = { reading?: boolean; readStop?: () => number; readStart?: () => number };

/**
 * Pause a socket so that the kernel keeps what arrives: `pause()` alone stops the 'data'
 * events but not the reads, so each packet would still wake the process. This stops the
 * handle's reads as Node's own socket does when it runs with a fixed read buffer; true when
 * it did, and then only resumeReading starts them again.
 */
function pauseReading(socket: { pause(): void }): boolean {
  socket.pause();
  const handle = (socket as { _handle?: SocketHandle | null })._handle;
  if (!handle?.reading || typeof handle.readStop !== "function" || typeof handle.readStart !== "function") return false;
  // Marked as not reading only once it has stopped: otherwise nothing would start it again.
  if (handle.readStop() !== 0) return false;
  handle.reading = false;
  return true;
}

function resumeReading(socket: { resume(): void; destroyed?: boolean }, stopped: boolean): void {
  const handle = (socket as { _handle?: SocketHandle | null })._handle;
  if (stopped && handle && !handle.reading && !socket.destroyed) {
    handle.reading = true;
    handle.readStart!();
  }
  socket.resume();
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
