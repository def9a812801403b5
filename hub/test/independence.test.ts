import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { metricValue } from "@datalab/shared";
import {
  MONGO_URL,
  NATS_URL,
  startPostgres,
  uniqueId,
  waitFor,
  type PostgresServer,
  type TestDatabase,
} from "@datalab/shared/testing";
import { MongoClient } from "mongodb";
import pg from "pg";
import { Hub } from "../src/hub";
import { createHubMetrics, type HubMetrics } from "../src/consume/metrics";
import { makeBatches, publishBatches, totalMessages, totalReadings } from "./support/batches";
import { testConfig, testLogger } from "./support/config";
import { count, testDatabase } from "./support/db";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy";

/**
 * Each sink has its own durable consumer: one database going down pauses only its own
 * consumer, its backlog waits in JetStream, and it catches up when the database is back —
 * with nothing lost, nothing doubled, nothing dead-lettered, while the other keeps flowing.
 */

async function cleanupStreams(nc: NatsConnection, hub: Hub) {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(hub.subjects.stream).catch(() => undefined);
  await jsm.streams.delete(hub.subjects.deadLetterStream).catch(() => undefined);
}

async function lag(nc: NatsConnection, hub: Hub, sink: string): Promise<number> {
  const ci = await (await jetstreamManager(nc)).consumers.info(hub.subjects.stream, `${sink}-sink`);
  return ci.num_pending + ci.num_ack_pending;
}

const state = (hub: Hub, sink: string) => hub.status().consumers.find((c) => c.sink === sink)?.state;
const errors = (m: HubMetrics, sink: string, kind: string) =>
  metricValue(m.registry, "datalab_hub_write_errors_total", { sink, kind });
const deadLetters = (m: HubMetrics) => metricValue(m.registry, "datalab_hub_dead_letters_total");

const mongoPart = MONGO_URL ? " (MongoDB keeps flowing)" : " (MongoDB part skipped: no DATALAB_MONGO_URL)";

describe(`PostgreSQL stopped while readings arrive${mongoPart}`, () => {
  let server: PostgresServer;
  let hub: Hub;
  let nc: NatsConnection;
  let query: pg.Pool;
  let mongo: MongoClient | undefined;
  const mongoDb = uniqueId("dl_");
  const metrics = createHubMetrics(false);

  beforeAll(async () => {
    // Its own Postgres instance: this test stops and starts it.
    server = await startPostgres();
    query = new pg.Pool({ connectionString: server.url, max: 1 });
    query.on("error", () => undefined);
    const config = testConfig({
      DATALAB_PG_URL: server.url,
      DATALAB_ACK_WAIT_MS: "5000",
      ...(MONGO_URL ? { DATALAB_MONGO_URL: MONGO_URL, DATALAB_MONGO_DB: mongoDb } : {}),
    });
    hub = new Hub(config, { logger: testLogger(), metrics });
    await hub.start();
    nc = await connect({ servers: NATS_URL });
    if (MONGO_URL) mongo = new MongoClient(MONGO_URL);
  });

  afterAll(async () => {
    await hub?.stop();
    if (nc) {
      await cleanupStreams(nc, hub);
      await nc.close();
    }
    await query?.end().catch(() => undefined);
    await mongo
      ?.db(mongoDb)
      .dropDatabase()
      .catch(() => undefined);
    await mongo?.close();
    await server?.destroy();
  });

  it("no loss, catch-up after the restart, no duplicate, no dead letter", async () => {
    const readings = async () =>
      Number((await query.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n);
    const messages = mongo?.db(mongoDb).collection("messages");
    const instance = uniqueId("i");
    const before = makeBatches("gwpg", instance, 10, 20);
    const during = makeBatches("gwpg", instance, 20, 20, 2, before.at(-1)!.batch.lastSeq + 1);
    await publishBatches(nc, hub.subjects, before);
    await waitFor(async () => (await readings()) === totalReadings(before), "first batches in Postgres");

    await server.stop();
    await publishBatches(nc, hub.subjects, during);
    await waitFor(() => state(hub, "postgres") === "waiting_for_sink", "postgres consumer to pause");
    if (messages) {
      // Postgres down does not hold MongoDB back.
      await waitFor(
        async () => (await messages.countDocuments()) === totalMessages([...before, ...during]),
        "every message in MongoDB while Postgres is down",
      );
      expect(await lag(nc, hub, "mongo")).toBe(0);
    }
    // The backlog waits in JetStream.
    expect(await lag(nc, hub, "postgres")).toBeGreaterThan(0);

    await server.start();
    await waitFor(
      async () => (await readings()) === totalReadings([...before, ...during]),
      "catch-up after Postgres restarted",
      30_000,
      100,
    );
    await waitFor(async () => (await lag(nc, hub, "postgres")) === 0, "postgres backlog drained");
    expect(state(hub, "postgres")).toBe("running");
    expect(
      Number((await query.query("SELECT count(DISTINCT (gateway_id, instance, seq)) AS n FROM readings")).rows[0].n),
    ).toBe(totalReadings([...before, ...during]));
    expect(await errors(metrics, "postgres", "unavailable")).toBeGreaterThan(0);
    expect(await errors(metrics, "postgres", "rejected")).toBe(0);
    expect(await deadLetters(metrics)).toBe(0);
    // The gateways row saw the newest batch.
    const gw = (await query.query("SELECT last_batch_seq FROM gateways WHERE gateway_id = 'gwpg'")).rows[0];
    expect(Number(gw.last_batch_seq)).toBe(during.at(-1)!.batch.lastSeq);
  });
});

describe.skipIf(!MONGO_URL)("MongoDB unreachable while readings arrive (needs DATALAB_MONGO_URL)", () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let hub: Hub;
  let nc: NatsConnection;
  let mongo: MongoClient;
  const mongoDb = uniqueId("dl_");
  const metrics = createHubMetrics(false);

  beforeAll(async () => {
    db = await testDatabase();
    // The shared MongoDB (FerretDB) stays up; the hub reaches it through a proxy this test cuts.
    const target = new URL(MONGO_URL!);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 27017));
    const config = testConfig({
      DATALAB_PG_URL: db.url,
      DATALAB_ACK_WAIT_MS: "5000",
      DATALAB_MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
      DATALAB_MONGO_DB: mongoDb,
    });
    hub = new Hub(config, { logger: testLogger(), metrics });
    await hub.start();
    nc = await connect({ servers: NATS_URL });
    mongo = new MongoClient(MONGO_URL!);
  });

  afterAll(async () => {
    await hub?.stop();
    if (nc) {
      await cleanupStreams(nc, hub);
      await nc.close();
    }
    await proxy?.close();
    await mongo
      ?.db(mongoDb)
      .dropDatabase()
      .catch(() => undefined);
    await mongo?.close();
    await db?.drop();
  });

  it("PostgreSQL keeps flowing; MongoDB catches up once back, no duplicate document, no dead letter", async () => {
    const messages = mongo.db(mongoDb).collection("messages");
    const instance = uniqueId("i");
    const before = makeBatches("gwmg", instance, 10, 20);
    const during = makeBatches("gwmg", instance, 20, 20, 2, before.at(-1)!.batch.lastSeq + 1);
    await publishBatches(nc, hub.subjects, before);
    await waitFor(async () => (await messages.countDocuments()) === totalMessages(before), "first messages in MongoDB");

    await proxy.cut();
    await publishBatches(nc, hub.subjects, during);
    await waitFor(
      async () => (await count(db)) === totalReadings([...before, ...during]),
      "every reading in Postgres while MongoDB is unreachable",
    );
    expect(await lag(nc, hub, "postgres")).toBe(0);
    await waitFor(() => state(hub, "mongo") === "waiting_for_sink", "mongo consumer to pause", 30_000);
    expect(await lag(nc, hub, "mongo")).toBeGreaterThan(0);

    await proxy.restore();
    await waitFor(
      async () => (await messages.countDocuments()) === totalMessages([...before, ...during]),
      "MongoDB catch-up",
      30_000,
      100,
    );
    await waitFor(async () => (await lag(nc, hub, "mongo")) === 0, "mongo backlog drained");
    expect(await errors(metrics, "mongo", "unavailable")).toBeGreaterThan(0);
    expect(await errors(metrics, "mongo", "rejected")).toBe(0);
    expect(await deadLetters(metrics)).toBe(0);
  });
});
