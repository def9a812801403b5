import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjects } from "@datalab/shared";
import { MONGO_URL, NATS_URL, uniqueId, waitFor, type TestDatabase, TIME_SCALE } from "@datalab/shared/testing";
import { MongoClient } from "mongodb";
import { makeBatches, publishBatches, totalMessages, totalReadings } from "./support/batches";
import { configEnv, testConfig } from "./support/config";
import { count, testDatabase } from "./support/db";
import { startHubProcess, type HubChild } from "./support/processes";

/**
 * Scale-out: two hub processes (`tsx hub/src/cli.ts run`, separate processes with their own
 * NATS and database connections) bound to the same durable consumers. A flood from four
 * gateways ends with every reading in Postgres exactly once — and every message in MongoDB
 * once when DATALAB_MONGO_URL is set — and each process did part of the work.
 */
describe("two hub processes on one stream", () => {
  let db: TestDatabase;
  let nc: NatsConnection;
  let mongo: MongoClient | undefined;
  const hubs: HubChild[] = [];
  const mongoDb = uniqueId("dl_");
  const config = () =>
    testConfig({
      DATALAB_PG_URL: db.url,
      DATALAB_SINK_CONCURRENCY: "2",
      ...(MONGO_URL ? { DATALAB_MONGO_URL: MONGO_URL, DATALAB_MONGO_DB: mongoDb } : {}),
    });
  let prefix = "";

  beforeAll(async () => {
    db = await testDatabase();
    nc = await connect({ servers: NATS_URL });
    if (MONGO_URL) mongo = new MongoClient(MONGO_URL);
  });

  afterAll(async () => {
    await Promise.all(hubs.map((h) => h.kill("SIGKILL")));
    if (nc && prefix) {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(subjects(prefix).stream).catch(() => undefined);
      await jsm.streams.delete(subjects(prefix).deadLetterStream).catch(() => undefined);
    }
    await nc?.close();
    await mongo
      ?.db(mongoDb)
      .dropDatabase()
      .catch(() => undefined);
    await mongo?.close();
    await db?.drop();
  });

  const sinksTested = MONGO_URL
    ? " (PostgreSQL and MongoDB)"
    : " (PostgreSQL; MongoDB part skipped: no DATALAB_MONGO_URL)";
  it(
    `share the flood; nothing written twice${sinksTested}`,
    async () => {
      const c = config();
      prefix = c.natsPrefix;
      const sinks = MONGO_URL ? ["postgres", "mongo"] : ["postgres"];
      hubs.push(
        ...(await Promise.all([
          startHubProcess(configEnv(c), sinks.length),
          startHubProcess(configEnv(c), sinks.length),
        ])),
      );

      // 4 gateways × 60 batches × 25 messages × 4 metrics: 24 000 readings in 6 000 messages.
      const gateways = ["gw1", "gw2", "gw3", "gw4"].map((g) => makeBatches(g, uniqueId("i"), 60, 25, 4, 1, `${g}-s`));
      const all = gateways.flat();
      await Promise.all(gateways.map((b) => publishBatches(nc, subjects(prefix), b)));
      const readings = totalReadings(all);
      expect(readings).toBe(24_000);

      await waitFor(async () => (await count(db)) === readings, "every reading in Postgres", 45_000, 100);
      const messages = mongo ? mongo.db(mongoDb).collection("messages") : undefined;
      if (messages)
        await waitFor(
          async () => (await messages.countDocuments()) === totalMessages(all),
          "every message in MongoDB",
          45_000,
          100,
        );

      for (const sink of sinks) {
        const written = await Promise.all(hubs.map((h) => h.metric("datalab_hub_readings_written_total", { sink })));
        const dups = await Promise.all(hubs.map((h) => h.metric("datalab_hub_duplicates_total", { sink })));
        // Both processes took part...
        expect(written[0], `${sink}: first process wrote nothing`).toBeGreaterThan(0);
        expect(written[1], `${sink}: second process wrote nothing`).toBeGreaterThan(0);
        // ...and what they wrote adds up to the flood: each batch was written by one of them
        // (any redelivery shows up as duplicates, never as a second row).
        expect(written[0]! + written[1]! - dups[0]! - dups[1]!).toBe(readings);
      }
      expect(await count(db)).toBe(readings);
      expect(await count(db, "SELECT count(DISTINCT (gateway_id, instance, seq)) AS n FROM readings")).toBe(readings);
      expect(await count(db, "SELECT count(*) AS n FROM gateways")).toBe(4);
      if (messages) expect(await messages.countDocuments()).toBe(totalMessages(all));

      const jsm = await jetstreamManager(nc);
      for (const sink of sinks) {
        await waitFor(async () => {
          const ci = await jsm.consumers.info(subjects(prefix).stream, `${sink}-sink`);
          return ci.num_pending + ci.num_ack_pending === 0;
        }, `${sink} consumer fully acked`);
      }
      // A graceful stop (SIGTERM) lets in-flight writes commit and ack, and exits 0.
      for (const h of hubs) {
        await h.kill("SIGTERM");
        expect(await h.exited).toBe(0);
      }
    },
    90_000 * TIME_SCALE,
  );
});
