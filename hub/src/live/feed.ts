import type { ServerResponse } from "node:http";
import { z } from "zod";
import { clientKey, Counter, Gauge, sendJson, type Logger, type Registry, type Route } from "@datalab/shared";
import { ApiError, listParam, metricParam, parseQuery, sensorParam } from "../http/params";

/** What a browser receives for one reading. */
export interface LiveReading {
  sensorId: string;
  metric: string;
  value: number;
  unit: string | null;
  ts: number;
  gatewayId: string;
}

export interface LiveOptions {
  maxClients: number;
  /** Streams one client address (an IPv6 /64) may hold, so one client cannot take every slot. Default: maxClients. */
  maxClientsPerAddress?: number;
  /**
   * Bytes that may wait in one client's socket buffer. Above it the client's readings are
   * dropped (and counted) instead of queued: a slow browser costs the hub at most this much
   * memory and never a wait.
   */
  bufferBytes: number;
  /** A client still over its buffer after this long is disconnected (its EventSource reconnects and refetches). */
  stallMs: number;
  /** Comment lines keep proxies from closing an idle stream, and let stalls be noticed when nothing is published. */
  heartbeatMs?: number;
  metrics: LiveMetrics;
  logger: Logger;
  now?: () => number;
  /** Told each time the number of clients changes (the fan-out beacons while it is above 0). */
  onClients?: (n: number) => void;
}

export interface LiveMetrics {
  clients: Gauge;
  sent: Counter;
  dropped: Counter;
  disconnected: Counter<"reason">;
  refused: Counter<"reason">;
}

export function createLiveMetrics(registry: Registry): LiveMetrics {
  const registers = [registry];
  return {
    clients: new Gauge({ name: "datalab_hub_live_clients", help: "Live-stream (SSE) clients connected", registers }),
    sent: new Counter({
      name: "datalab_hub_live_readings_sent_total",
      help: "Readings written to live-stream clients",
      registers,
    }),
    dropped: new Counter({
      name: "datalab_hub_live_readings_dropped_total",
      help: "Readings not sent to a live client because its buffer was full (slow client); the client is told how many",
      registers,
    }),
    disconnected: new Counter({
      name: "datalab_hub_live_disconnects_total",
      help:
        "Live clients the hub disconnected, by reason " +
        "(slow: over its buffer for DATALAB_LIVE_STALL_SECONDS; shutdown)",
      labelNames: ["reason"],
      registers,
    }),
    refused: new Counter({
      name: "datalab_hub_live_refused_total",
      help:
        "Live-stream connections answered 503, by reason " +
        "(full: DATALAB_LIVE_MAX_CLIENTS; per_address: DATALAB_LIVE_MAX_CLIENTS_PER_ADDRESS)",
      labelNames: ["reason"],
      registers,
    }),
  };
}

interface Client {
  id: number;
  res: ServerResponse;
  address: string;
  sensors: ReadonlySet<string> | null;
  metrics: ReadonlySet<string> | null;
  /** Readings dropped since the last event this client got; sent as an `event: dropped`. */
  dropped: number;
  stalledSince: number | null;
}

const MAX_FILTER = 500;

/**
 * New readings pushed to browsers with Server-Sent Events, as the Postgres sink commits them.
 *
 * Slow clients: drop and count, then disconnect. `publish` never waits on a socket. A client
 * whose socket buffer holds more than `bufferBytes` gets nothing new (the readings are counted
 * in datalab_hub_live_readings_dropped_total, and the client receives `event: dropped` with the
 * number once it catches up, so the page can refetch). A client stuck over the limit for
 * `stallMs` is disconnected. Per-client memory is thus bounded by bufferBytes plus one event.
 */
export class LiveFeed {
  private readonly clients = new Set<Client>();
  private readonly perAddress = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private nextId = 1;
  private readonly now: () => number;

  constructor(private readonly o: LiveOptions) {
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * Per-client state, for status pages and tests: bytes waiting in its buffer, readings dropped
   * since its last event.
   */
  stats(): { id: number; buffered: number; dropped: number; stalled: boolean }[] {
    return [...this.clients].map((c) => ({
      id: c.id,
      buffered: c.res.writableLength,
      dropped: c.dropped,
      stalled: c.stalledSince !== null,
    }));
  }

  /**
   * Called after a batch committed (here or, through the fan-out, on another hub). Cheap when
   * nobody listens; never throws at the caller.
   */
  publish(readings: readonly LiveReading[]): void {
    if (this.clients.size === 0 || readings.length === 0) return;
    const wire = readings.map(toWire);
    let everything: string | undefined;
    const t = this.now();
    for (const c of this.clients) {
      if (!c.sensors && !c.metrics) {
        everything ??= frame("readings", wire);
        this.send(c, everything, wire.length, t);
        continue;
      }
      const mine = wire.filter(
        (r) => (!c.sensors || c.sensors.has(r.sensorId)) && (!c.metrics || c.metrics.has(r.metric)),
      );
      if (mine.length > 0) this.send(c, frame("readings", mine), mine.length, t);
    }
  }

  private send(c: Client, payload: string, n: number, t: number): void {
    if (this.overBuffer(c, t)) {
      c.dropped += n;
      this.o.metrics.dropped.inc(n);
      return;
    }
    if (c.dropped > 0) {
      c.res.write(frame("dropped", { dropped: c.dropped }));
      c.dropped = 0;
    }
    c.res.write(payload);
    this.o.metrics.sent.inc(n);
  }

  /** True (and the stall clock running, or the client gone) when the client's buffer is full. */
  private overBuffer(c: Client, t: number): boolean {
    if (c.res.writableLength <= this.o.bufferBytes) {
      c.stalledSince = null;
      return false;
    }
    c.stalledSince ??= t;
    if (t - c.stalledSince >= this.o.stallMs) this.disconnect(c, "slow");
    return true;
  }

  /** Forget a client; false when it was already gone. */
  private remove(c: Client): boolean {
    if (!this.clients.delete(c)) return false;
    const n = (this.perAddress.get(c.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(c.address, n);
    else this.perAddress.delete(c.address);
    return true;
  }

  private disconnect(c: Client, reason: "slow" | "shutdown"): void {
    if (!this.remove(c)) return;
    this.o.metrics.disconnected.inc({ reason });
    this.counted();
    this.o.logger.info({ client: c.id, reason, dropped: c.dropped }, "live client disconnected");
    // destroy, not end: ending would first wait for the very buffer that will not drain.
    c.res.destroy();
    this.idle();
  }

  /** GET /api/live[?sensor=a&sensor=b][&metric=m]: an SSE stream of readings. */
  readonly route: Route = (req, res, url) => {
    if (req.method !== "GET") {
      res.setHeader("allow", "GET");
      sendJson(res, 405, { error: "the live stream is GET only" });
      return;
    }
    let filter: { sensor?: string[] | undefined; metric?: string[] | undefined };
    try {
      filter = parseQuery(
        z.object({
          sensor: listParam(sensorParam, MAX_FILTER).optional(),
          metric: listParam(metricParam, MAX_FILTER).optional(),
        }),
        url.searchParams,
        ["sensor", "metric"],
      );
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      sendJson(res, err.status, { error: err.message, problems: err.problems });
      return;
    }
    if (this.clients.size >= this.o.maxClients) {
      this.o.metrics.refused.inc({ reason: "full" });
      res.setHeader("retry-after", "10");
      sendJson(res, 503, { error: `${this.o.maxClients} live clients already connected (DATALAB_LIVE_MAX_CLIENTS)` });
      return;
    }
    const address = clientKey(req);
    const perAddress = this.o.maxClientsPerAddress ?? this.o.maxClients;
    if ((this.perAddress.get(address) ?? 0) >= perAddress) {
      this.o.metrics.refused.inc({ reason: "per_address" });
      res.setHeader("retry-after", "10");
      sendJson(res, 503, {
        error:
          `your address already holds ${perAddress} live streams ` +
          "(DATALAB_LIVE_MAX_CLIENTS_PER_ADDRESS); close one first",
      });
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Tell nginx-style proxies not to buffer the stream.
      "x-accel-buffering": "no",
    });
    res.socket?.setNoDelay(true);
    const c: Client = {
      id: this.nextId++,
      res,
      address,
      sensors: filter.sensor && filter.sensor.length > 0 ? new Set(filter.sensor) : null,
      metrics: filter.metric && filter.metric.length > 0 ? new Set(filter.metric) : null,
      dropped: 0,
      stalledSince: null,
    };
    // retry: how long an EventSource waits before reconnecting after the stream ends.
    res.write(
      `retry: 3000\n\n${frame("hello", {
        client: c.id,
        sensors: filter.sensor ?? null,
        metrics: filter.metric ?? null,
      })}`,
    );
    this.clients.add(c);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.counted();
    res.on("close", () => {
      if (this.remove(c)) {
        this.counted();
        this.idle();
      }
    });
    this.heartbeat ??= setInterval(() => this.beat(), this.o.heartbeatMs ?? 15_000).unref();
  };

  private counted(): void {
    this.o.metrics.clients.set(this.clients.size);
    this.o.onClients?.(this.clients.size);
  }

  private beat(): void {
    const t = this.now();
    for (const c of this.clients) if (!this.overBuffer(c, t)) c.res.write(": ping\n\n");
  }

  /** No timer while nobody listens, so a hub without browsers has nothing running for them. */
  private idle(): void {
    if (this.clients.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  close(): void {
    for (const c of [...this.clients]) this.disconnect(c, "shutdown");
    this.idle();
  }
}

function toWire(r: LiveReading): LiveReading {
  return { sensorId: r.sensorId, metric: r.metric, value: r.value, unit: r.unit, ts: r.ts, gatewayId: r.gatewayId };
}

function frame(event: string, data: unknown): string {
  // JSON never holds a raw newline, so one data: line per event is enough.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
