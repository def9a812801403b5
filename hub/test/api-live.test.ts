/**
 * The live stream's promise: a slow browser never slows the hub. A real HTTP server, a real
 * client that reads and a real TCP client that stops reading; readings published straight
 * into the feed (the pipeline path is covered in api.test.ts).
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistry, metricValue, silentLogger, startHttp, type HttpServer, type Reading } from "@datalab/shared";
import { waitFor } from "@datalab/shared/testing";
import { createLiveFeedMetrics, LiveFeed, notifyOnWrite } from "../src/live";
import type { Sink } from "../src/sinks/types";
import { openSse } from "./api-sse";

const BUFFER = 256 * 1024;
const registry = createRegistry("hub", false);
const feed = new LiveFeed({
  maxClients: 3,
  bufferBytes: BUFFER,
  stallMs: 1_500,
  heartbeatMs: 100,
  metrics: createLiveFeedMetrics(registry),
  logger: silentLogger(),
});
let http: HttpServer;
let base: string;

function readings(n: number, start: number): Reading[] {
  return Array.from({ length: n }, (_, i) => ({
    gatewayId: "gw-live",
    instance: "i1",
    seq: start + i,
    sensorId: `s-${i % 50}`,
    metric: "temperature",
    value: 20 + (i % 100) / 10,
    unit: "Cel",
    ts: 1_767_225_600_000 + start + i,
    receivedAt: 1_767_225_600_000 + start + i,
    source: "test",
  }));
}

/** A client that sends the request and then never reads: its kernel buffers fill, then the hub's. */
async function stalledClient(): Promise<Socket> {
  const s = connect(http.port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject));
  s.write("GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
  s.pause();
  return s;
}

beforeAll(async () => {
  http = await startHttp({
    port: 0,
    host: "127.0.0.1",
    registry,
    logger: silentLogger(),
    health: () => ({ ok: true }),
    routes: { "/api/live": feed.route },
  });
  base = `http://127.0.0.1:${http.port}`;
});

afterAll(async () => {
  feed.close();
  await http?.close();
});

describe("live stream (SSE)", () => {
  it("drops and counts for a stalled client, then disconnects it; a reading client gets every reading", async () => {
    const fast = await openSse(`${base}/api/live`);
    const slow = await stalledClient();
    let slowClosed = false;
    slow.once("close", () => (slowClosed = true));
    await waitFor(() => feed.size === 2, "two live clients");

    const perPublish = 1_000;
    let published = 0;
    let maxBuffered = 0;
    // Publish until the stalled client is over its buffer and losing readings (bounded: 400 batches, ~40 MB).
    for (let i = 0; i < 400 && (await metricValue(registry, "datalab_hub_live_readings_dropped_total")) === 0; i++) {
      feed.publish(readings(perPublish, published));
      published += perPublish;
      for (const c of feed.stats()) maxBuffered = Math.max(maxBuffered, c.buffered);
      await new Promise((r) => setImmediate(r));
    }
    const dropped = await metricValue(registry, "datalab_hub_live_readings_dropped_total");
    expect(dropped).toBeGreaterThan(0);
    // Memory per client is bounded: its buffer limit plus at most one event (~100 kB here).
    expect(maxBuffered).toBeLessThan(BUFFER + 200 * 1024);

    // Still stalled after stallMs: the heartbeat notices and cuts it.
    await waitFor(() => feed.size === 1, "the stalled client to be disconnected", 10_000);
    expect(await metricValue(registry, "datalab_hub_live_disconnects_total", { reason: "slow" })).toBe(1);
    // Reading again, the stalled client finds its stream ended.
    slow.resume();
    await waitFor(() => slowClosed, "the stalled client's connection to close");

    // The client that reads lost nothing and was never told of drops.
    await waitFor(
      () =>
        fast.events
          .filter((e) => e.event === "readings")
          .reduce((n, e) => n + (JSON.parse(e.data) as unknown[]).length, 0) === published,
      `all ${published} readings at the reading client`,
    );
    expect(fast.events.some((e) => e.event === "dropped")).toBe(false);
    fast.close();
    slow.destroy();
    await waitFor(() => feed.size === 0, "no clients");
  });

  it("filters by sensor and metric, refuses bad filters, and caps the number of clients", async () => {
    const one = await openSse(`${base}/api/live?sensor=s-3&metric=temperature`);
    const other = await openSse(`${base}/api/live?metric=humidity`);
    await waitFor(() => feed.size === 2, "two clients");
    feed.publish(readings(100, 1_000_000));
    await waitFor(() => one.events.some((e) => e.event === "readings"), "s-3's readings");
    const got = one.events
      .filter((e) => e.event === "readings")
      .flatMap((e) => JSON.parse(e.data) as { sensorId: string }[]);
    expect(got).toHaveLength(2); // s-3 appears at i = 3 and 53
    expect(got.every((r) => r.sensorId === "s-3")).toBe(true);
    expect(other.events.filter((e) => e.event === "readings")).toHaveLength(0);

    const bad = await fetch(`${base}/api/live?sensor=`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/parameter "sensor": sensor id is empty/);

    const third = await openSse(`${base}/api/live`);
    const fourth = await openSse(`${base}/api/live`);
    expect(third.status).toBe(200);
    expect(fourth.status).toBe(503);
    for (const c of [one, other, third, fourth]) c.close();
    await waitFor(() => feed.size === 0, "no clients");
  });
});

describe("write listener on a sink", () => {
  const batch = { gatewayId: "g", batch: {} as never, readings: readings(3, 1), streamSeq: 1, bytes: 10 };
  const sink = (inserted: number): Sink => ({
    name: "postgres",
    write: async (b) => ({ inserted, duplicates: b.readings.length - inserted }),
    healthy: async () => true,
    close: async () => undefined,
  });

  it("announces committed batches, not pure redeliveries; never fails a write because of the listener", async () => {
    const heard: number[] = [];
    const s = notifyOnWrite(sink(3), (r) => heard.push(r.length), silentLogger());
    expect(s.name).toBe("postgres");
    expect(await s.write(batch)).toEqual({ inserted: 3, duplicates: 0 });
    const dup = notifyOnWrite(sink(0), (r) => heard.push(r.length), silentLogger());
    await dup.write(batch);
    expect(heard).toEqual([3]);
    const throwing = notifyOnWrite(
      sink(3),
      () => {
        throw new Error("listener bug");
      },
      silentLogger(),
    );
    expect(await throwing.write(batch)).toEqual({ inserted: 3, duplicates: 0 });
  });
});
