/**
 * One live view across hubs: two hub processes share the durable consumer (each commits its
 * share of a flood of batches), and a live client on either hub receives every committed
 * reading once, whichever hub wrote it. Batches sent again under a new message id (a gateway's
 * resend the hub has already stored) insert nothing and are not shown again. Hubs announce only
 * while some hub has a browser: nothing goes out while nobody watches, a browser on one hub
 * makes the other announce, and announcing stops once the last browser's beacon expires. Real
 * NATS and Postgres; the hubs run in this process, each with its own registry.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import {
  createRegistry,
  metricValue,
  type Reading,
  type Registry,
  silentLogger,
  startHttp,
  subjects,
  type HttpServer,
} from "@datalab/shared";
import { NATS_URL, uniqueId, waitFor, type TestDatabase } from "@datalab/shared/testing";
import { testDatabase } from "./support/db";
import { Hub } from "../src/hub";
import { createHubMetrics } from "../src/consume/metrics";
import { createDataLab, type DataLab } from "../src/datalab";
import type { Sink } from "../src/sinks/types";
import { makeBatches, publishBatches, totalReadings } from "./support/batches";
import { testConfig } from "./support/config";
import { openSse, type SseClient } from "./api-sse";

const BATCHES = 160;
const MESSAGES = 20;
const METRICS = 2;

const fan = (registry: Registry, outcome: string) =>
  metricValue(registry, "datalab_hub_live_fanout_messages_total", { outcome });
const announcing = (registry: Registry) => metricValue(registry, "datalab_hub_live_fanout_announcing");
const readingsOf = (c: SseClient) =>
  c.events
    .filter((e) => e.event === "readings")
    .flatMap((e) => JSON.parse(e.data) as { sensorId: string; metric: string; ts: number }[]);

/** What a raw client hears on a subject, as text. */
function listen(nc: NatsConnection, subject: string): { heard: string[]; sub: Subscription } {
  const heard: string[] = [];
  const sub = nc.subscribe(subject, {
    callback: (err, msg) => {
      if (!err) heard.push(msg.string());
    },
  });
  return { heard, sub };
}

describe("live stream across two hubs", () => {
  let db: TestDatabase;
  let nc: NatsConnection;
  const hubs: Hub[] = [];
  const clients: SseClient[] = [];

  beforeAll(async () => {
    db = await testDatabase();
    // Small ack-pending windows per process, so both hubs take part in the flood.
    const config = testConfig({ DATALAB_PG_URL: db.url, DATALAB_SINK_CONCURRENCY: "2", DATALAB_MAX_ACK_PENDING: "8" });
    for (let i = 0; i < 2; i++) {
      const hub = new Hub(config, { logger: silentLogger(), metrics: createHubMetrics(false) });
      await hub.start();
      hubs.push(hub);
    }
    nc = await connect({ servers: config.natsUrl });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.stop();
    if (nc) {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(hubs[0]!.subjects.stream).catch(() => undefined);
      await jsm.streams.delete(hubs[0]!.subjects.deadLetterStream).catch(() => undefined);
      await nc.close();
    }
    await db?.drop();
  });

  const written = (h: Hub) =>
    metricValue(h.metrics.registry, "datalab_hub_batches_written_total", { sink: "postgres" });
  const writtenByAll = async () => (await written(hubs[0]!)) + (await written(hubs[1]!));

  it("with no browser on any hub, a committed batch is not announced", async () => {
    const subj = hubs[0]!.subjects;
    const raw = listen(nc, subj.live);
    await nc.flush();
    const batches = makeBatches("gw-quiet", "i1", 20, MESSAGES, METRICS, 1, "quiet-");
    await publishBatches(nc, subj, batches);
    const skipped = async () =>
      (await fan(hubs[0]!.metrics.registry, "skipped")) + (await fan(hubs[1]!.metrics.registry, "skipped"));
    await waitFor(async () => (await skipped()) === batches.length, "every batch committed and not announced");
    expect(await writtenByAll()).toBe(batches.length);
    // A sentinel on the subject proves the subscription hears it: nothing a hub said came before.
    nc.publish(subj.live, "[]");
    await waitFor(() => raw.heard.length > 0, "the sentinel");
    expect(raw.heard).toEqual(["[]"]);
    for (const h of hubs) {
      expect(await fan(h.metrics.registry, "sent")).toBe(0);
      expect(await announcing(h.metrics.registry)).toBe(0);
    }
    raw.sub.unsubscribe();
  });

  it("a browser on hub B makes hub A announce: it receives A's commits too", async () => {
    const [a, b] = [hubs[0]!, hubs[1]!];
    const c = await openSse(`http://127.0.0.1:${b.httpPort}/api/live`);
    expect(c.status).toBe(200);
    await waitFor(() => c.events.some((e) => e.event === "hello"), "the stream open");
    // B beaconed as its browser connected: A hears it one round trip later, not a beacon period.
    await waitFor(async () => (await announcing(a.metrics.registry)) === 1, "hub A to hear B's beacon");

    const before = {
      writtenA: await written(a),
      all: await writtenByAll(),
      sentA: await fan(a.metrics.registry, "sent"),
    };
    // Rounds of batches until A has committed some (the two hubs share the consumer).
    let total = 0;
    let seq = 1;
    for (let round = 0; round < 20 && (await written(a)) === before.writtenA; round++) {
      const batches = makeBatches("gw-watched", "i1", 10, MESSAGES, METRICS, seq, "watched-");
      seq = batches.at(-1)!.batch.lastSeq + 1;
      total += totalReadings(batches);
      await publishBatches(nc, a.subjects, batches);
      const want = before.all + (round + 1) * 10;
      await waitFor(async () => (await writtenByAll()) === want, "the round written");
    }
    expect(await written(a)).toBeGreaterThan(before.writtenA);
    expect(await fan(a.metrics.registry, "sent")).toBeGreaterThan(before.sentA);
    await waitFor(() => readingsOf(c).length >= total, `the browser on B to get all ${total} readings`);
    const got = readingsOf(c);
    expect(got.length).toBe(total);
    expect(new Set(got.map((r) => `${r.sensorId}|${r.metric}|${r.ts}`)).size).toBe(total);
    // A's echo of its own announcements found no browser there.
    expect(await fan(a.metrics.registry, "received")).toBe(0);
    c.close();
    await waitFor(async () => (await metricValue(b.metrics.registry, "datalab_hub_live_clients")) === 0, "B idle");
  });

  it("a client on either hub receives every reading of a flood, once", async () => {
    // The tests before this one wrote and announced too: count from here.
    const base = await Promise.all(
      hubs.map(async (h) => ({
        written: await written(h),
        sent: await fan(h.metrics.registry, "sent"),
        received: await fan(h.metrics.registry, "received"),
        fed: await metricValue(h.metrics.registry, "datalab_hub_live_readings_sent_total"),
      })),
    );
    for (const h of hubs) {
      const c = await openSse(`http://127.0.0.1:${h.httpPort}/api/live`);
      expect(c.status).toBe(200);
      clients.push(c);
    }
    await waitFor(() => clients.every((c) => c.events.some((e) => e.event === "hello")), "both streams open");

    const batches = makeBatches("gw-live", "i1", BATCHES, MESSAGES, METRICS, 1, "live-");
    const total = totalReadings(batches);
    await publishBatches(nc, hubs[0]!.subjects, batches);
    // The same bytes under new message ids: JetStream stores them again, the sink finds every row present.
    const resent = batches.slice(0, 10).map((b) => ({ ...b, msgId: `${b.msgId}-resent` }));
    await publishBatches(nc, hubs[0]!.subjects, resent);

    const flood = () => Promise.all(hubs.map(async (h, i) => (await written(h)) - base[i]!.written));
    await waitFor(
      async () => (await flood()).reduce((a, b) => a + b, 0) === BATCHES + resent.length,
      "every batch (and resend) written and acked",
      60_000,
    );
    const perHub = await flood();
    // Both hubs committed part of the flood: neither alone saw it all.
    for (const n of perHub) expect(n).toBeGreaterThan(0);
    const stored = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM readings WHERE gateway_id = 'gw-live'",
    );
    expect(Number(stored.rows[0]!.n)).toBe(total);

    // Every announcement reached every hub, and each hub's client has read all its feed sent.
    const delta = async (i: number, outcome: "sent" | "received") =>
      (await fan(hubs[i]!.metrics.registry, outcome)) - base[i]![outcome];
    await waitFor(async () => {
      const sent = (await delta(0, "sent")) + (await delta(1, "sent"));
      return (await delta(0, "received")) === sent && (await delta(1, "received")) === sent;
    }, "each hub heard every announcement");
    for (const [i, c] of clients.entries()) {
      const fed = (await metricValue(hubs[i]!.metrics.registry, "datalab_hub_live_readings_sent_total")) - base[i]!.fed;
      await waitFor(() => readingsOf(c).length >= fed, `client ${i} read all ${fed} readings its hub sent`, 30_000);
      const got = readingsOf(c);
      expect(got.length).toBe(total);
      expect(new Set(got.map((r) => `${r.sensorId}|${r.metric}|${r.ts}`)).size).toBe(total);
      expect(c.events.some((e) => e.event === "dropped")).toBe(false);
    }
  });
});

/**
 * Two hubs' DataLabs on one clock the test moves. The beacon period is longer than the test,
 * so the only beacon is the one sent when B's first browser connects.
 */
describe("announcements stop once the last browser's beacon expires", () => {
  const BEACON_MS = 10 * 60_000;
  let clock = 1_767_225_600_000;
  const now = () => clock;
  const subj = subjects(uniqueId("t"));
  const registries = [createRegistry("hub", false), createRegistry("hub", false)];
  const conns: NatsConnection[] = [];
  const labs: DataLab[] = [];
  let raw: NatsConnection;
  let http: HttpServer;
  let seq = 1;

  const sink: Sink = {
    name: "postgres",
    write: async (b) => ({ inserted: b.readings.length, duplicates: 0 }),
    healthy: async () => true,
    close: async () => undefined,
  };
  /** Hub A commits a batch of `n` new readings. */
  const commitOnA = async (n: number) => {
    const readings: Reading[] = Array.from({ length: n }, () => ({
      gatewayId: "gw-a",
      instance: "i1",
      seq,
      sensorId: "s-1",
      metric: "temperature",
      value: 20,
      unit: "Cel",
      ts: 1_767_225_600_000 + seq,
      receivedAt: 1_767_225_600_000 + seq++,
      source: "test",
    }));
    await labs[0]!
      .announcing(sink)
      .write({ gatewayId: "gw-a", batch: {} as never, readings, streamSeq: seq, bytes: 1 });
  };

  beforeAll(async () => {
    for (const registry of registries) {
      const nc = await connect({ servers: NATS_URL });
      const lab = createDataLab(testConfig(), registry, silentLogger());
      lab.fanOut(nc, subj, { beaconMs: BEACON_MS, now });
      conns.push(nc);
      labs.push(lab);
    }
    raw = await connect({ servers: NATS_URL });
    http = await startHttp({
      port: 0,
      host: "127.0.0.1",
      registry: registries[1]!,
      logger: silentLogger(),
      health: () => ({ ok: true }),
      routes: { "/api/live": labs[1]!.feed.route },
    });
  });

  afterAll(async () => {
    for (const lab of labs) await lab.close();
    await http?.close();
    for (const nc of [...conns, raw]) await nc?.close();
  });

  it("announces one round trip after B's first browser connects, and not 3 periods after it left", async () => {
    const [a, b] = registries as [Registry, Registry];
    const wire = listen(raw, subj.live);
    const beacons = listen(raw, subj.liveWatching);
    await raw.flush();
    await commitOnA(3);
    expect(await fan(a, "skipped")).toBe(1);

    const c = await openSse(`http://127.0.0.1:${http.port}/api/live`);
    await waitFor(() => c.events.some((e) => e.event === "hello"), "the stream open");
    await waitFor(async () => (await announcing(a)) === 1, "hub A to hear B's first beacon");
    expect(beacons.heard).toEqual([""]);
    await commitOnA(3);
    await waitFor(() => readingsOf(c).length === 3, "A's readings at B's browser");
    expect(await fan(b, "received")).toBe(1);

    c.close();
    await waitFor(async () => (await metricValue(b, "datalab_hub_live_clients")) === 0, "B's browser gone");
    // Within 3 periods of the last beacon A still announces: B's browser may be reconnecting.
    clock += 3 * BEACON_MS - 1;
    await commitOnA(3);
    expect(await fan(a, "sent")).toBe(2);
    clock += 1;
    expect(await announcing(a)).toBe(0);
    expect(await announcing(b)).toBe(0);
    await commitOnA(3);
    expect(await fan(a, "skipped")).toBe(2);
    expect(await fan(a, "sent")).toBe(2);
    // Whatever A published has reached the server, and what the server sent on has reached us.
    await conns[0]!.flush();
    await raw.flush();
    expect(wire.heard).toHaveLength(2);
    expect(beacons.heard).toEqual([""]);
  });
});
