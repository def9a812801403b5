import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { Counter, errorMessage, Gauge, type Logger, type Reading, type Registry, type Subjects } from "@datalab/shared";
import type { LiveReading } from "./feed";

/**
 * One live view across hub processes. Hub processes share the durable consumers, so each
 * commits only its share of the batches; after a commit, a hub publishes what it wrote on the
 * core NATS subject `<prefix>.live`, and every hub (itself included: NATS echoes a client's own
 * publishes to it) hands what it hears to its own browsers. A redelivered batch inserts
 * nothing, so it is never announced (live/observe.ts), and each announcement reaches each hub
 * once. Core NATS is at most once: a hub that is disconnected misses what was said meanwhile,
 * as a browser does; the page refetches on reconnect.
 *
 * Announcing only while someone watches: a hub with at least one browser says so on
 * `<prefix>.live.watching` (an empty message, the beacon) as soon as its first browser connects
 * and then every `beaconMs` while any stays. Every hub hears the beacons (its own too) and
 * announces its commits only until 3 beacon periods after the last one it heard; the rest are
 * skipped and counted. A hub that starts or reconnects asks (`?` on the same subject) and every
 * hub with browsers beacons at once, so no hub waits a whole period to learn it is watched:
 * a browser sees every hub's commits one NATS round trip after it connects.
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
const BEACON = new Uint8Array(0);
const QUERY = new TextEncoder().encode("?");
/** Beacons a hub may miss before the others stop announcing for its browsers. */
const EXPIRY_PERIODS = 3;

export interface LiveFanoutOptions {
  /** How often a hub with browsers beacons (default 2 s). */
  beaconMs?: number;
  /** The clock beacons expire by (tests move it); timers still run on real time. */
  now?: () => number;
}

export class LiveFanout {
  private readonly subs: Subscription[] = [];
  private readonly messages: Counter<"outcome">;
  private readonly enc = new TextEncoder();
  private readonly beaconMs: number;
  private readonly now: () => number;
  /** This hub has a browser on its live feed. */
  private local = false;
  /** Announce until then: 3 periods after the last beacon heard (or sent). */
  private watchedUntil = Number.NEGATIVE_INFINITY;
  private beaconTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Pick<Subjects, "live" | "liveWatching">,
    /** Where heard readings go: the hub's LiveFeed. */
    private readonly deliver: (readings: readonly LiveReading[]) => void,
    registry: Registry,
    private readonly logger: Logger,
    options: LiveFanoutOptions = {},
  ) {
    this.beaconMs = options.beaconMs ?? 2_000;
    this.now = options.now ?? Date.now;
    this.messages = new Counter({
      name: "datalab_hub_live_fanout_messages_total",
      help:
        "Live fan-out messages between hub processes, by outcome (sent, received, " +
        "unwatched: heard while no browser watched this hub, invalid: not a list of readings, publish_failed, " +
        "skipped: a committed batch not announced because no hub had a browser watching, one per batch)",
      labelNames: ["outcome"],
      registers: [registry],
    });
    const announcing = () => this.announcing();
    new Gauge({
      name: "datalab_hub_live_fanout_announcing",
      help: "1 while this hub announces its commits to every hub's live stream (some hub has a browser), else 0",
      registers: [registry],
      // Read at scrape time: the state lapses with the clock, not on an event.
      collect() {
        this.set(announcing() ? 1 : 0);
      },
    });
  }

  start(): void {
    // No queue group: every hub process must hear every announcement and every beacon.
    this.subs.push(
      this.nc.subscribe(this.subjects.live, {
        callback: (err, msg) => {
          if (!err) this.heard(msg.data);
        },
      }),
      this.nc.subscribe(this.subjects.liveWatching, {
        callback: (err, msg) => {
          if (err) return;
          // Empty: a beacon. Anything else asks who watches.
          if (msg.data.byteLength === 0) this.watchedUntil = this.expiry();
          else if (this.local) this.beacon();
        },
      }),
    );
    this.ask();
    this.askOnReconnect().catch((err) =>
      this.logger.debug({ err: errorMessage(err) }, "live fan-out stopped watching the NATS status"),
    );
  }

  /** True while a commit here is announced: a browser here, or a beacon heard lately. */
  announcing(): boolean {
    return this.local || this.now() < this.watchedUntil;
  }

  /** The hub's LiveFeed gained or lost browsers: beacon at once on the first, stop after the last. */
  watched(local: boolean): void {
    if (local === this.local || this.stopped) return;
    this.local = local;
    if (local) {
      this.beacon();
      this.beaconTimer = setInterval(() => this.beacon(), this.beaconMs).unref();
    } else {
      clearInterval(this.beaconTimer);
      this.beaconTimer = undefined;
    }
  }

  /** After a commit: tell every hub, if any has a browser. Never throws at the sink. */
  announce(readings: readonly Reading[]): void {
    if (!this.announcing()) {
      this.messages.inc({ outcome: "skipped" });
      return;
    }
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

  private heard(data: Uint8Array): void {
    // Parsing and checking announcements for nobody is most of what they cost a hub.
    if (!this.local) {
      this.messages.inc({ outcome: "unwatched" });
      return;
    }
    let readings: LiveReading[];
    try {
      readings = LiveWire.parse(JSON.parse(new TextDecoder().decode(data)));
    } catch (e) {
      this.messages.inc({ outcome: "invalid" });
      this.logger.debug({ err: errorMessage(e) }, "live fan-out message refused");
      return;
    }
    this.messages.inc({ outcome: "received" });
    this.deliver(readings);
  }

  private expiry(): number {
    return this.now() + EXPIRY_PERIODS * this.beaconMs;
  }

  /** Its own beacon counts here at once, not only when the echo comes back. */
  private beacon(): void {
    this.watchedUntil = this.expiry();
    this.tell(BEACON, "live fan-out beacon failed; other hubs may not announce to this hub's browsers");
  }

  private ask(): void {
    this.tell(QUERY, "live fan-out query failed; this hub announces once it hears the next beacon");
  }

  private tell(data: Uint8Array, failure: string): void {
    try {
      this.nc.publish(this.subjects.liveWatching, data);
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, failure);
    }
  }

  /** Beacons sent while this hub was cut off never reached it: ask again. */
  private async askOnReconnect(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.stopped) return;
      if (s.type === "reconnect") this.ask();
    }
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
      this.nc.publish(this.subjects.live, data);
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
    this.watched(false);
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
  }
}
