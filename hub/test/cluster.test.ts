import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ensureReadingsStream, metricValue, subjects } from "@datalab/shared";
import {
  startNatsCluster,
  uniqueId,
  waitFor,
  type NatsCluster,
  type NatsServer,
  type TestDatabase,
  TIME_SCALE,
} from "@datalab/shared/testing";
import { Hub } from "../src/hub";
import { createHubMetrics } from "../src/consume/metrics";
import { makeBatches, publishBatches, totalReadings } from "./support/batches";
import { testConfig, testLogger } from "./support/config";
import { count, testDatabase } from "./support/db";

/**
 * A three-node NATS cluster (three nats-server processes on loopback), the readings stream
 * and the hub's durable consumers with three replicas. The node leading the stream is
 * SIGKILLed in the middle of a flood: publishers retry under the same Nats-Msg-Id, the hub's
 * connection fails over, and every reading still lands exactly once.
 */
describe("three-node NATS cluster, one node killed mid-flood", () => {
  const names = ["n1", "n2", "n3"];
  let cluster: NatsCluster | undefined;
  let nodes = new Map<string, NatsServer>();
  let db: TestDatabase;
  let hub: Hub;
  let nc: NatsConnection;
  const metrics = createHubMetrics(false);

  beforeAll(async () => {
    db = await testDatabase();
    cluster = await startNatsCluster(names, "datalab-test");
    nodes = cluster.nodes;
    const urls = names.map((n) => nodes.get(n)!.url);
    nc = await connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    // No API check yet: until the meta leader is elected JetStream does not answer.
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    const config = testConfig({
      DATALAB_NATS_URL: urls.join(","),
      DATALAB_PG_URL: db.url,
      DATALAB_STREAM_REPLICAS: "3",
      DATALAB_ACK_WAIT_MS: "5000",
    });
    // JetStream needs its meta leader and all three peers before an R3 stream can be placed.
    await waitFor(
      () => ensureReadingsStream(jsm, subjects(config.natsPrefix), { replicas: 3 }).then(() => true),
      "the cluster to accept a stream with 3 replicas",
      30_000,
      250,
    );
    hub = new Hub(config, { logger: testLogger(), metrics });
    await hub.start();
  });

  afterAll(async () => {
    await hub?.stop();
    await nc?.close();
    await cluster?.kill();
    await db?.drop();
  });

  it(
    "every reading lands once",
    async () => {
      const jsm = await jetstreamManager(nc);
      const si = await jsm.streams.info(hub.subjects.stream);
      expect(si.config.num_replicas).toBe(3);
      expect(si.cluster?.replicas?.length).toBe(2);
      const ci = await jsm.consumers.info(hub.subjects.stream, "postgres-sink");
      expect(ci.cluster?.replicas?.length).toBe(2);

      // Each gateway with sensors of its own, as in the field (batches touching the same
      // sensor rows serialise on their row locks until commit).
      const gateways = ["gwa", "gwb", "gwc"].map((g) => makeBatches(g, uniqueId("i"), 40, 25, 2, 1, `${g}-s`));
      const expected = totalReadings(gateways.flat());
      const flood = Promise.all(gateways.map((b) => publishBatches(nc, hub.subjects, b, { retryForMs: 40_000 })));
      // Mid-flood: some batches written, more to come.
      await waitFor(async () => (await count(db)) > expected / 5, "the flood to be under way");
      const leader = (await jsm.streams.info(hub.subjects.stream)).cluster?.leader;
      expect(names).toContain(leader);
      await nodes.get(leader!)!.kill();
      await flood;
      await waitFor(async () => (await count(db)) === expected, "every reading in Postgres", 50_000, 100).catch(
        async (err: Error) => {
          const c = await jsm.consumers.info(hub.subjects.stream, "postgres-sink").catch((e: Error) => e.message);
          const s = await jsm.streams.info(hub.subjects.stream).catch((e: Error) => e.message);
          const act = (
            await db.pool.query(
              "SELECT pid, state, wait_event_type, wait_event, left(query, 60) AS q, now() - xact_start AS age FROM " +
                "pg_stat_activity WHERE datname = current_database()",
            )
          ).rows;
          throw new Error(
            `${err.message}: ${await count(db)} of ${expected}; consumer ${JSON.stringify(c)}; stream ` +
              `${JSON.stringify(s)}; hub ${JSON.stringify(hub.status())}; pg ${JSON.stringify(act)}`,
          );
        },
      );
      expect(await count(db, "SELECT count(DISTINCT (gateway_id, instance, seq)) AS n FROM readings")).toBe(expected);
      // The stream moved to a surviving leader and the durable consumer drained there.
      // (Retried: the API may time out while the cluster settles after the kill.)
      const after = await waitFor(
        () => jsm.streams.info(hub.subjects.stream),
        "stream info from the surviving nodes",
        20_000,
        250,
      );
      expect(after.cluster?.leader).not.toBe(leader);
      await waitFor(
        async () => {
          const c = await jsm.consumers.info(hub.subjects.stream, "postgres-sink");
          return c.num_pending + c.num_ack_pending === 0;
        },
        "the consumer to drain on the new leader",
        30_000,
        250,
      );
      expect(await metricValue(metrics.registry, "datalab_hub_dead_letters_total")).toBe(0);
      // Headroom over vitest's 60 s for a loaded CI machine.
    },
    90_000 * TIME_SCALE,
  );
});
