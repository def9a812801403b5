/**
 * Zero loss from MQTT: a QoS 1 flood of 50,000 messages, the gateway killed with SIGKILL at
 * random points and restarted each time with its default settings (persistent session, acks
 * after commit), the real Mosquitto, NATS, hub and PostgreSQL: every message lands once.
 *
 * The broker is this test's own Mosquitto with an unbounded queue: what is published while
 * the gateway is down waits there (a stock Mosquitto keeps 1,000 messages per session and
 * drops the rest, which is the broker's loss, counted in its log; docs/gateway-durability.md).
 */
import { rmSync } from "node:fs";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deleteStreams,
  createTestDatabase,
  startMosquitto,
  uniqueId,
  waitFor,
  TIME_SCALE,
  type MosquittoBroker,
  type TestDatabase,
} from "@datalab/shared/testing";
import type { Hub } from "@datalab/hub";
import { GatewayProcess, getJson, scrape, testWorld, type TestWorld } from "../gateway/test/support/gateway";
import type { GatewayStatus } from "../gateway/src/status";
import { startHub } from "./support/pipeline";

const MESSAGES = 50_000;
const KILLS = 6;

let broker: MosquittoBroker;
let db: TestDatabase;
let hub: Hub;
let w: TestWorld;
let gw: GatewayProcess | undefined;

beforeAll(async () => {
  broker = await startMosquitto({ maxQueuedMessages: 0 });
  db = await createTestDatabase();
  const id = uniqueId("zl");
  w = testWorld({ DATALAB_NATS_PREFIX: id, DATALAB_MQTT_URL: broker.url });
  hub = await startHub({ prefix: id, pgUrl: db.url, env: { DATALAB_HTTP_HOST: "127.0.0.1" } });
});

afterAll(async () => {
  await gw?.kill();
  await hub?.stop();
  await deleteStreams(w.env.DATALAB_NATS_PREFIX!);
  await db?.drop();
  await broker?.stop();
  rmSync(w.dataDir, { recursive: true, force: true });
});

describe("MQTT QoS 1 through kill -9 of the gateway, default settings", () => {
  it(
    `lands every one of ${MESSAGES.toLocaleString("en")} messages in Postgres exactly once ` +
      `through ${KILLS} kills at random points`,
    async () => {
      gw = new GatewayProcess(w.env).start();
      let port = await gw.ready();
      // The gateway subscribes once at its first start; from then on the broker keeps its session.
      await waitFor(() => gw!.log.includes("MQTT connected"), "the gateway's MQTT session");

      const publisher = await mqtt.connectAsync(broker.url, { clientId: uniqueId("pub-"), protocolVersion: 5 });
      // Paced at about 2,000 messages/s, and the last 5,000 held until the kills are done, so
      // the flood goes on through every kill and restart however slow the machine.
      let published = 0;
      let killsDone: () => void = () => {};
      const killed = new Promise<void>((r) => (killsDone = r));
      const flood = (async () => {
        const started = Date.now();
        while (published < MESSAGES) {
          if (published === MESSAGES - 5_000) await killed;
          const chunk: Promise<unknown>[] = [];
          // Chunks below the broker's receive maximum for the publisher (max_inflight_messages 100).
          for (const end = Math.min(MESSAGES, published + 50); published < end; published++) {
            chunk.push(publisher.publishAsync(`${w.topic}/zl`, `{"name":"zl","value":${published}}`, { qos: 1 }));
          }
          await Promise.all(chunk);
          const ahead = started + published / 2 - Date.now();
          if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
        }
      })();

      // Kill points: a random 0.3-2.5 s into each run of the gateway, while the flood goes on.
      const killedAt: number[] = [];
      let resentKept = 0;
      let resentNew = 0;
      for (let k = 0; k < KILLS; k++) {
        // The run has taken in messages (so a commit group may be open), then a random wait.
        // (Unless the flood is held for the kills and this run already found nothing left.)
        await waitFor(
          async () =>
            published >= MESSAGES - 5_000 || (await scrape(port, "datalab_gateway_readings_committed_total")) > 0,
          `readings committed before kill ${k + 1}`,
          30_000,
          5,
        ).catch(async (err: Error) => {
          const received = await scrape(port, "datalab_gateway_messages_received_total");
          const unacked = await scrape(port, "datalab_gateway_mqtt_unacked");
          throw new Error(
            `${err.message}; published ${published}, this run received ${received}, unacked ${unacked}\n` +
              gw!.log.slice(-3000),
          );
        });
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 2_200));
        const committed = await scrape(port, "datalab_gateway_readings_committed_total");
        resentKept += await scrape(port, "datalab_gateway_mqtt_resends_total", { outcome: "already_committed" });
        resentNew += await scrape(port, "datalab_gateway_mqtt_resends_total", { outcome: "stored" });
        const exit = await gw.kill("SIGKILL");
        expect(exit.signal).toBe("SIGKILL");
        killedAt.push(committed);
        gw = new GatewayProcess(w.env).start();
        port = await gw.ready();
      }
      killsDone();
      await flood;
      await publisher.endAsync();

      const count = async (sql: string) => Number((await db.pool.query<{ n: string }>(sql)).rows[0]!.n);
      await waitFor(
        async () => (await count("SELECT count(DISTINCT value) AS n FROM readings WHERE sensor_id = 'zl'")) >= MESSAGES,
        "every message in Postgres",
        120_000,
        200,
      ).catch(async (err: Error) => {
        const stored = await count("SELECT count(*) AS n FROM readings WHERE sensor_id = 'zl'");
        throw new Error(`${err.message}; rows ${stored}\n${gw!.log.slice(-3000)}`);
      });
      // Nothing more to come: the outbox is empty, then count again.
      await waitFor(
        async () => (await getJson<GatewayStatus>(port, "/status")).outbox.readings === 0,
        "the outbox to drain",
        30_000,
        200,
      );
      const rows = await db.pool.query<{ n: string; distinct: string; min: number; max: number }>(
        "SELECT count(*) AS n, count(DISTINCT value) AS distinct, min(value) AS min, max(value) AS max " +
          "FROM readings WHERE sensor_id = 'zl'",
      );
      const r = rows.rows[0]!;
      const lastRun = await scrape(port, "datalab_gateway_readings_committed_total");
      console.info(
        `zero-loss test: ${MESSAGES} published, kills after ${killedAt.join(", ")} readings committed by each run ` +
          `(the last run: ${lastRun}); resends by the broker until the last kill: ` +
          `${resentKept} already committed (acknowledged, not stored again), ${resentNew} stored, ` +
          `${r.n} rows (${TIME_SCALE}x deadlines)`,
      );
      expect(Number(r.distinct)).toBe(MESSAGES);
      expect(Number(r.n)).toBe(MESSAGES);
      expect(Number(r.min)).toBe(0);
      expect(Number(r.max)).toBe(MESSAGES - 1);
      expect(killedAt.length).toBe(KILLS);
    },
    200_000 * TIME_SCALE,
  );
});
