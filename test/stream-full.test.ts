/**
 * The size cap the hub sets on the readings stream, when it is reached: the stream refuses new
 * batches (discard "new"), the gateway keeps them in its outbox and says why, nothing is lost,
 * and once the hub raises the cap at its next start every reading lands. Real Mosquitto, NATS
 * (the shared server, a stream of the test's own) and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjects } from "@datalab/shared";
import {
  deleteStreams,
  createTestDatabase,
  MQTT_URL,
  NATS_URL,
  TIME_SCALE,
  uniqueId,
  waitFor,
  type TestDatabase,
} from "@datalab/shared/testing";
import type { Gateway } from "@datalab/gateway";
import type { Hub } from "@datalab/hub";
import { publishSimulation } from "@datalab/sensors";
import { countReadings, startGateway, startHub as startTestHub } from "./support/pipeline";

const id = uniqueId("full");
const subj = subjects(id);
const CAP = 1024 * 1024;
let db: TestDatabase;
let nc: NatsConnection;
let gateway: Gateway | undefined;
let hub: Hub | undefined;

function startHub(maxBytes: number): Promise<Hub> {
  return startTestHub({ prefix: id, pgUrl: db.url, env: { DATALAB_STREAM_MAX_BYTES: String(maxBytes) } });
}

function readings(): Promise<number> {
  return countReadings(db, "sensor_id LIKE $1", [`sim-${id}-%`]);
}

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await connect({ servers: NATS_URL });
});

afterAll(async () => {
  await gateway?.stop();
  await hub?.stop();
  await deleteStreams(id);
  await nc?.close();
  await db?.drop();
});

describe("a full readings stream", () => {
  it(
    "refuses new batches, which wait in the gateway's outbox, and nothing is lost once the hub raises the cap",
    async () => {
      hub = await startHub(CAP);
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info(subj.stream)).config).toMatchObject({ max_bytes: CAP, discard: "new" });
      gateway = await startGateway({ id, env: { DATALAB_NATS_ENSURE_STREAM: "false" } });
      // Well over 1 MiB of batches: the sinks write them, but limits retention keeps them.
      const sent = await publishSimulation({
        mqttUrl: MQTT_URL,
        format: "multi",
        topicRoot: `${id}/sensors`,
        count: 6000,
        qos: 1,
        sensors: 20,
        rate: 200,
        unpaced: true,
        seed: id,
        startTs: Date.UTC(2026, 0, 1),
        idPrefix: `sim-${id}`,
      });
      const expected = sent * 3;
      // The stream fills and refuses; the rest waits in the outbox, counted there.
      const stuck = await waitFor(
        async () => {
          const s = gateway!.status();
          const si = await jsm.streams.info(subj.stream);
          return s.outbox.readings > 0 && /maximum bytes/i.test(s.uplink?.lastError ?? "") && si.state.bytes <= CAP
            ? { s, si }
            : undefined;
        },
        "the stream to be full and the gateway to hold the rest",
        60_000,
        100,
      );
      // Nothing lost: what Postgres holds and what the outbox holds make up everything sent.
      await waitFor(
        async () => (await readings()) + gateway!.status().outbox.readings === expected,
        "stored + waiting = sent",
        30_000,
        100,
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}: ${await readings()} stored, ${gateway!.status().outbox.readings} waiting, ` +
            `${expected} sent; ${JSON.stringify(stuck.s.uplink)}`,
        );
      });
      expect(await readings()).toBeLessThan(expected);

      // The next hub start raises the cap: the gateway's retries go through.
      await hub.stop();
      hub = await startHub(64 * CAP);
      expect((await jsm.streams.info(subj.stream)).config.max_bytes).toBe(64 * CAP);
      await waitFor(async () => (await readings()) === expected, `all ${expected} readings in Postgres`, 60_000, 100);
      expect(gateway.status().outbox.readings).toBe(0);
    },
    180_000 * TIME_SCALE,
  );
});
