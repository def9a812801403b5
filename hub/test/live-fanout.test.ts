/**
 * One live view across hubs: two hub processes share the durable consumer (each commits its
 * share of a flood of batches), and a live client on either hub receives every committed
 * reading once, whichever hub wrote it. Batches sent again under a new message id (a gateway's
 * resend the hub has already stored) insert nothing and are not shown again. Real NATS and
 * Postgres; both hubs run in this process, each with its own registry.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { metricValue, silentLogger } from "@datalab/shared";
import { waitFor, type TestDatabase } from "@datalab/shared/testing";
import { testDatabase } from "./support/db";
import { Hub } from "../src/hub";
import { createHubMetrics } from "../src/consume/metrics";
import { makeBatches, publishBatches, totalReadings } from "./support/batches";
import { testConfig } from "./support/config";
import { openSse, type SseClient } from "./api-sse";

const BATCHES = 160;
const MESSAGES = 20;
const METRICS = 2;

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

  it("a client on either hub receives every reading of a flood, once", async () => {
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

    const written = () =>
      Promise.all(
        hubs.map((h) => metricValue(h.metrics.registry, "datalab_hub_batches_written_total", { sink: "postgres" })),
      );
    await waitFor(
      async () => (await written()).reduce((a, b) => a + b, 0) === BATCHES + resent.length,
      "every batch (and resend) written and acked",
      60_000,
    );
    const perHub = await written();
    // Both hubs committed part of the flood: neither alone saw it all.
    for (const n of perHub) expect(n).toBeGreaterThan(0);
    expect(Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n)).toBe(total);

    // Every announcement reached every hub, and each hub's client has read all its feed sent.
    const fan = (h: Hub, outcome: string) =>
      metricValue(h.metrics.registry, "datalab_hub_live_fanout_messages_total", { outcome });
    await waitFor(async () => {
      const sent = (await fan(hubs[0]!, "sent")) + (await fan(hubs[1]!, "sent"));
      return (await fan(hubs[0]!, "received")) === sent && (await fan(hubs[1]!, "received")) === sent;
    }, "each hub heard every announcement");
    const received = (c: SseClient) =>
      c.events
        .filter((e) => e.event === "readings")
        .flatMap((e) => JSON.parse(e.data) as { sensorId: string; metric: string; ts: number }[]);
    for (const [i, c] of clients.entries()) {
      const fed = await metricValue(hubs[i]!.metrics.registry, "datalab_hub_live_readings_sent_total");
      await waitFor(() => received(c).length >= fed, `client ${i} read all ${fed} readings its hub sent`, 30_000);
      const got = received(c);
      expect(got.length).toBe(total);
      expect(new Set(got.map((r) => `${r.sensorId}|${r.metric}|${r.ts}`)).size).toBe(total);
      expect(c.events.some((e) => e.event === "dropped")).toBe(false);
    }
  });
});
