/**
 * The hub owns the readings stream's settings. On a three-node NATS cluster a gateway connects
 * first and creates the stream with one replica (its create-if-missing default); the hub then
 * starts with DATALAB_STREAM_REPLICAS=3 and a size cap, brings the stream to three replicas
 * and says so in its log. Killing the node that leads the stream afterwards loses nothing.
 * Real Mosquitto, three real nats-server processes, real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { silentLogger, subjects } from "@datalab/shared";
import {
  createTestDatabase,
  MQTT_URL,
  startNatsCluster,
  streamCopy,
  TIME_SCALE,
  uniqueId,
  waitFor,
  type NatsCluster,
  type TestDatabase,
} from "@datalab/shared/testing";
import type { Gateway } from "@datalab/gateway";
import type { Hub } from "@datalab/hub";
import { publishSimulation } from "@datalab/sensors";
import { countReadings, startGateway, startHub } from "./support/pipeline";

const id = uniqueId("owner");
const subj = subjects(id);
const names = ["o1", "o2", "o3"];
let cluster: NatsCluster;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let gateway: Gateway | undefined;
let hub: Hub | undefined;
const hubLog: { obj: unknown; msg: string }[] = [];

function readings(): Promise<number> {
  return countReadings(db, "sensor_id LIKE $1", [`sim-${id}-%`]);
}

/** QoS 1 simulated messages, three metrics each, on this test's topic tree. */
async function send(count: number, seed: string): Promise<number> {
  const sent = await publishSimulation({
    mqttUrl: MQTT_URL,
    format: "multi",
    topicRoot: `${id}/sensors`,
    count,
    qos: 1,
    sensors: 5,
    rate: 2000,
    seed,
    startTs: Date.UTC(2026, 0, 1) + (seed === "a" ? 0 : 86_400_000),
    idPrefix: `sim-${id}`,
  });
  return sent * 3;
}

beforeAll(async () => {
  db = await createTestDatabase();
  cluster = await startNatsCluster(names, id);
  nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  jsm = await jetstreamManager(nc, { checkAPI: false });
  // JetStream answers only once its meta leader is elected.
  await waitFor(
    () =>
      jsm
        .getAccountInfo()
        .then(() => true)
        .catch(() => false),
    "the cluster's JetStream to answer",
    30_000,
    250,
  );
}, 60_000 * TIME_SCALE);

afterAll(async () => {
  await gateway?.stop();
  await hub?.stop();
  await nc?.close();
  await cluster?.kill();
  await db?.drop();
});

/** The stream's cluster state as each surviving node reports it, for a failure's message. */
async function survivorsSay(killed: string): Promise<string> {
  const out: string[] = [];
  for (const [i, url] of cluster.urls.entries()) {
    if (names[i] === killed) continue;
    const c = await connect({ servers: [url], timeout: 2_000 }).catch((e: Error) => e);
    if (c instanceof Error) {
      out.push(`${names[i]}: ${c.message}`);
      continue;
    }
    try {
      const info = await (await jetstreamManager(c, { checkAPI: false })).streams.info(subj.stream);
      out.push(`${names[i]}: ${JSON.stringify(info.cluster)}`);
    } catch (e) {
      out.push(`${names[i]}: ${(e as Error).message}`);
    } finally {
      await c.close();
    }
  }
  for (const [i, name] of names.entries()) {
    if (name === killed) continue;
    const copy = await streamCopy(cluster.monitorUrls[i]!, subj.stream).catch((e: Error) => e.message);
    out.push(`${name}'s own copy: ${JSON.stringify(copy)}; its log: ${cluster.nodes.get(name)!.logTail()}`);
  }
  return out.join("; ");
}

describe("the hub owns the readings stream", () => {
  it(
    "a gateway first creates it with one replica; the hub brings it to three; killing a node loses nothing",
    async () => {
      const urls = cluster.urls.join(",");
      gateway = await startGateway({ id, natsUrl: urls });
      let expected = await send(200, "a");
      // Before any hub: the gateway made the stream, one replica, and it holds the batches.
      const first = await waitFor(
        async () => {
          const si = await jsm.streams.info(subj.stream).catch(() => undefined);
          return si && si.state.messages > 0 && gateway!.status().outbox.readings === 0 ? si : undefined;
        },
        "the gateway to create the stream and deliver its first wave",
        30_000,
        100,
      );
      expect(first.config.num_replicas).toBe(1);

      const logger = silentLogger();
      const info = logger.info.bind(logger);
      logger.info = ((obj: unknown, msg?: string) => {
        hubLog.push({ obj, msg: msg ?? "" });
        return info(obj as object, msg);
      }) as typeof logger.info;
      const maxBytes = 64 * 1024 * 1024;
      hub = await startHub({
        prefix: id,
        pgUrl: db.url,
        natsUrl: urls,
        env: {
          DATALAB_STREAM_REPLICAS: "3",
          DATALAB_STREAM_MAX_BYTES: String(maxBytes),
          DATALAB_ACK_WAIT_MS: "5000",
        },
        deps: { logger },
      });
      const said = hubLog.find(
        (l) => l.msg === "stream updated" && (l.obj as { stream?: string }).stream === subj.stream,
      );
      expect(said, JSON.stringify(hubLog)).toBeDefined();
      expect((said!.obj as { changes: string[] }).changes).toContain("num_replicas: 1 -> 3");

      const si = await jsm.streams.info(subj.stream);
      expect(si.config.num_replicas).toBe(3);
      expect(si.config.max_bytes).toBe(maxBytes);
      expect(si.config.discard).toBe("new");
      // The two new peers copy the stream and catch up.
      const settled = await waitFor(
        async () => {
          const s = await jsm.streams.info(subj.stream).catch(() => undefined);
          const peers = s?.cluster?.replicas ?? [];
          return peers.length === 2 && peers.every((p) => p.current) && s!.cluster?.leader ? s : undefined;
        },
        "two current replicas besides the leader",
        30_000,
        250,
      );
      expect((await jsm.streams.info(subj.deadLetterStream)).config.num_replicas).toBe(3);
      await waitFor(
        async () => (await readings()) === expected,
        `the first ${expected} readings in Postgres`,
        30_000,
        100,
      );
      // nats-server 2.9 may call a new replica current before its catch-up has copied the
      // stream (seen: 233 of 300 messages; CI once killed the leader then: both survivors'
      // catch-ups stalled, and the stream had no replica able to lead). JetStream survives a
      // node only once replicas hold the data, so each node's own copy must hold the stream's
      // last message before the kill.
      const last = (await jsm.streams.info(subj.stream)).state.last_seq;
      await waitFor(
        async () => {
          const copies = await Promise.all(cluster.monitorUrls.map((u) => streamCopy(u, subj.stream)));
          return copies.every((c) => c !== undefined && c.lastSeq >= last);
        },
        "each node's own copy of the stream to hold its last message",
        30_000,
        250,
      );

      // A second wave; mid-way, the node leading the stream dies.
      const wave = send(400, "b");
      await waitFor(async () => (await readings()) > expected + 150, "the second wave under way", 30_000, 50);
      const leader = settled.cluster!.leader!;
      await cluster.nodes.get(leader)!.kill();
      expected += await wave;
      await waitFor(
        async () => (await readings()) === expected,
        `all ${expected} readings in Postgres`,
        60_000,
        100,
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}: ${await readings()}; ` +
            `gateway ${JSON.stringify(gateway!.status())}; hub ${JSON.stringify(hub!.status())}; ` +
            `killed ${leader}; the survivors say: ${await survivorsSay(leader)}`,
        );
      });
      // Asked on a fresh connection to the survivors each time: the admin connection was on the
      // killed node, and a request of its own may be lost while it moves over.
      const survivors = cluster.urls.filter((_, i) => names[i] !== leader);
      const after = await waitFor(
        async () => {
          const c = await connect({ servers: survivors, timeout: 2_000 });
          try {
            return await (await jetstreamManager(c, { checkAPI: false })).streams.info(subj.stream);
          } finally {
            await c.close();
          }
        },
        "stream info from the surviving nodes",
        20_000,
        250,
      );
      expect(after.cluster?.leader).not.toBe(leader);
      expect(after.config.num_replicas).toBe(3);
      // Exactly once: no reading doubled by the failover.
      const distinct = await db.pool.query<{ n: string }>(
        "SELECT count(DISTINCT (gateway_id, instance, seq)) AS n FROM readings WHERE sensor_id LIKE $1",
        [`sim-${id}-%`],
      );
      expect(Number(distinct.rows[0]!.n)).toBe(expected);
    },
    180_000 * TIME_SCALE,
  );
});
