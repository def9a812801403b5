import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { Counter, errorMessage, type Logger, type Reading, type Registry } from "@datalab/shared";
import type { LiveReading } from "./feed";

/**
 * One live view across hub processes. Hub processes share the durable consumers, so each
 * commits only its share of the batches; after a commit, a hub publishes what it wrote on the
 * core NATS subject `<prefix>.live`, and every hub (itself included: NATS echoes a client's own
 * publishes to it) hands what it hears to its own browsers. A redelivered batch inserts
 * nothing, so it is never announced (live/observe.ts), and each announcement reaches each hub
 * once. Core NATS is at most once: a hub that is disconnected misses what was said meanwhile,
 * as a browser does; the page refetches on reconnect.
 */

const LiveWire = z.array(
  z.object({
    sensorId: z.string(),
    metric: z.string(),
    value: z.number(),
    unit: z.string().nullable(),
    ts: z.number(),
    gatewayId: z.string(),
  }),
);

/** Readings per message before the payload limit is even looked at: a few hundred KiB. */
const CHUNK = 1_000;

export class LiveFanout {
  private sub: Subscription | undefined;
  private readonly messages: Counter<"outcome">;
  private readonly enc = new TextEncoder();

  constructor(
    private readonly nc: NatsConnection,
    readonly subject: string,
    /** Where heard readings go: the hub's LiveFeed. */
    private readonly deliver: (readings: readonly LiveReading[]) => void,
    registry: Registry,
    private readonly logger: Logger,
    /** False while no browser watches this hub: what is heard is then not even parsed. */
    private readonly watched: () => boolean = () => true,
  ) {
    this.messages = new Counter({
      name: "datalab_hub_live_fanout_messages_total",
      help:
        "Live fan-out messages between hub processes, by outcome (sent, received, " +
        "unwatched: heard while no browser watched this hub, invalid: not a list of readings, publish_failed)",
      labelNames: ["outcome"],
      registers: [registry],
    });
  }

  start(): void {
    // No queue group: every hub process must hear every announcement.
    this.sub = this.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err) return;
        // Most of a hub's live cost was parsing and checking its own announcements for nobody.
        if (!this.watched()) {
          this.messages.inc({ outcome: "unwatched" });
          return;
        }
        let readings: LiveReading[];
        try {
          readings = LiveWire.parse(JSON.parse(new TextDecoder().decode(msg.data)));
        } catch (e) {
          this.messages.inc({ outcome: "invalid" });
          this.logger.debug({ err: errorMessage(e) }, "live fan-out message refused");
          return;
        }
        this.messages.inc({ outcome: "received" });
        this.deliver(readings);
      },
    });
  }

  /** After a commit: tell every hub. Never throws at the sink. */
  announce(readings: readonly Reading[]): void {
    const wire: LiveReading[] = readings.map((r) => ({
      sensorId: r.sensorId,
      metric: r.metric,
      value: r.value,
      unit: r.unit,
      ts: r.ts,
      gatewayId: r.gatewayId,
    }));
    for (let i = 0; i < wire.length; i += CHUNK) this.send(wire.slice(i, i + CHUNK));
  }

  /** Halves a chunk until it fits the server's max_payload (1 MiB by default, configurable). */
  private send(chunk: LiveReading[]): void {
    const data = this.enc.encode(JSON.stringify(chunk));
    const max = this.nc.info?.max_payload ?? 1024 * 1024;
    if (data.byteLength > max && chunk.length > 1) {
      const half = Math.ceil(chunk.length / 2);
      this.send(chunk.slice(0, half));
      this.send(chunk.slice(half));
      return;
    }
    try {
      this.nc.publish(this.subject, data);
      this.messages.inc({ outcome: "sent" });
    } catch (err) {
      this.messages.inc({ outcome: "publish_failed" });
      this.logger.warn(
        { err: errorMessage(err) },
        "live fan-out publish failed; browsers on other hubs miss these readings",
      );
    }
  }

  stop(): void {
    this.sub?.unsubscribe();
  }
}
