import mqtt, { type MqttClient } from "mqtt";
import { redactUrl } from "@datalab/shared";
import { OutputError, type OutMessage, type Output } from "./types";

export interface MqttOutputOptions {
  url: string;
  qos: 0 | 1;
  /**
   * Publishes not yet confirmed (QoS 1: PUBACK; QoS 0: written to the socket). At this many
   * the sender waits: a bounded window, so a slow or absent broker stops the producer instead
   * of growing mqtt.js's queue without limit. Default 1024 for QoS 1 (fewer round trips per
   * PUBACK); 256 for QoS 0, since mqtt.js adds a 'drain' listener per publish waiting on a
   * full socket and warns past 1000 of them.
   */
  window?: number;
  clientId?: string;
  connectTimeoutMs?: number;
}

/**
 * The producer resumes when the window is down to this share. Refilling in small steps keeps
 * publishes flowing; waiting for the window to drain fully stalls on TCP delayed ACKs.
 */
const RESUME_AT = 0.75;

export class MqttOutput implements Output {
  readonly description: string;
  private pending = 0;
  private readonly window: number;
  private waiter: (() => void) | undefined;
  private idle: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(
    private readonly client: MqttClient,
    private readonly o: MqttOutputOptions,
  ) {
    this.window = o.window ?? (o.qos === 0 ? 256 : 1024);
    this.description = `MQTT ${redactUrl(o.url)} (QoS ${o.qos})`;
  }

  static async connect(o: MqttOutputOptions): Promise<MqttOutput> {
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    const client = mqtt.connect(o.url, {
      clientId: o.clientId ?? `datalab-sensors-${process.pid}-${Date.now().toString(36)}`,
      reconnectPeriod: 1_000,
      connectTimeout: timeoutMs,
    });
    // mqtt.js retries a refused connection forever without an 'error' event; give up with a clear message instead.
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string, cause?: unknown) => {
        clearTimeout(timer);
        client.end(true);
        reject(
          new OutputError(
            `cannot reach the MQTT broker at ${redactUrl(o.url)}: ${why} (set DATALAB_MQTT_URL)`,
            "unreachable",
            { cause },
          ),
        );
      };
      const timer = setTimeout(() => fail(`no connection within ${timeoutMs / 1000} s`), timeoutMs);
      client.once("connect", () => {
        clearTimeout(timer);
        client.removeAllListeners("error");
        client.on("error", () => undefined); // reported through publish callbacks
        resolve();
      });
      client.once("error", (err) => fail(err.message, err));
    });
    return new MqttOutput(client, o);
  }

  /** Publishes sent and not yet confirmed. */
  get inflight(): number {
    return this.pending;
  }

  send(m: OutMessage): Promise<void> | undefined {
    if (this.failure)
      throw new OutputError(`MQTT publish failed: ${this.failure.message}`, "failed", { cause: this.failure });
    this.pending += 1;
    this.client.publish(m.topic, m.payload, { qos: this.o.qos }, this.settled);
    if (this.pending < this.window) return undefined;
    return new Promise<void>((resolve) => (this.waiter = resolve));
  }

  private readonly settled = (err?: Error): void => {
    this.pending -= 1;
    if (err && !this.failure) this.failure = err;
    if (this.waiter && (this.pending <= this.window * RESUME_AT || this.failure)) {
      const w = this.waiter;
      this.waiter = undefined;
      w();
    }
    if (this.pending === 0 && this.idle) this.idle();
  };

  async close(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    await this.client.endAsync();
    if (this.failure)
      throw new OutputError(`MQTT publish failed: ${this.failure.message}`, "failed", { cause: this.failure });
  }
}
