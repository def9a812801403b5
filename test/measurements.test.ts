/**
 * One row per measurement, end to end against the real Mosquitto, NATS and PostgreSQL: two
 * gateways subscribed to the same topics (two gateways in radio range of one sensor), a
 * recorded data set replayed twice, and rtl_433 events with their repeats. Each measurement
 * lands once; the hub's fold counter says, per gateway, how many gateway readings it folded.
 */
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricValue } from "@datalab/shared";
import { MQTT_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import type { Gateway } from "@datalab/gateway";
import { MqttEncoder, MqttOutput, replayFile } from "@datalab/sensors";
import { startGateway, startPipeline, type Pipeline } from "./support/pipeline";
import { intelLabReadings, READING_KEY } from "./support/recorded";

const id = uniqueId("meas");
const fixtures = new URL("../../shared/fixtures/", import.meta.url);
const topics = `${id}/sensors/#`;
const rtlTopics = `${id}/rtl_433/+/events`;
let pipeline: Pipeline;
let second: Gateway;

function mqttState(g: Gateway): string | undefined {
  return g.status().sources.find((s) => s.name.startsWith("mqtt"))?.state;
}

async function folded(gatewayId?: string): Promise<number> {
  return metricValue(
    pipeline.hub.metrics.registry,
    "datalab_hub_folded_total",
    gatewayId ? { gateway: gatewayId } : {},
  );
}

async function committed(g: Gateway): Promise<number> {
  return metricValue(g.metrics.registry, "datalab_gateway_readings_committed_total");
}

beforeAll(async () => {
  pipeline = await startPipeline({ id, topics, gatewayEnv: { DATALAB_MQTT_RTL433_TOPICS: rtlTopics } });
  second = await startGateway({
    id,
    gatewayId: `gw2-${id}`,
    topics,
    env: { DATALAB_MQTT_RTL433_TOPICS: rtlTopics },
  });
  await waitFor(
    () => mqttState(pipeline.gateway) === "connected" && mqttState(second) === "connected",
    "both gateways subscribed",
  );
});

afterAll(async () => {
  await second?.stop();
  await pipeline?.stop();
});

describe("one row per measurement: two gateways on one topic, a replay run twice", () => {
  it(
    "the Intel Lab rows replayed twice, heard by two gateways, leave one row each; " +
      "3 of every 4 gateway readings are folded and counted",
    async () => {
      const file = new URL("intel-lab/lines.txt", fixtures).pathname;
      const expected = intelLabReadings(file, (mote) => `intel-${mote}`);
      expect(expected.size).toBe(36);
      const before = (await committed(pipeline.gateway)) + (await committed(second));
      for (let run = 0; run < 2; run++) {
        const out = await MqttOutput.connect({ url: MQTT_URL, qos: 1 });
        const summary = await replayFile(
          { file, format: "intel-lab", mapping: { sensorPrefix: "intel-" }, speed: "max" },
          new MqttEncoder("multi", `${id}/sensors/intel`),
          out,
        );
        await out.close();
        expect(summary.published).toBe(9);
      }
      // Both gateways committed both runs, and their outboxes drained: every copy reached the hub.
      await waitFor(
        async () => (await committed(pipeline.gateway)) + (await committed(second)) - before === 4 * 36,
        "4 x 36 gateway readings committed",
      );
      await waitFor(
        () => pipeline.gateway.status().outbox.readings === 0 && second.status().outbox.readings === 0,
        "both outboxes empty",
      );
      await waitFor(async () => (await folded()) >= 3 * 36, "the folds counted", 20_000);

      const rows = await pipeline.db.pool.query<{ k: string; sensor_time: boolean }>(
        `SELECT ${READING_KEY} AS k, sensor_time FROM readings WHERE sensor_id LIKE 'intel-%'`,
      );
      expect(rows.rows).toHaveLength(36);
      expect(new Set(rows.rows.map((r) => r.k))).toEqual(expected);
      expect(rows.rows.every((r) => r.sensor_time)).toBe(true);
      expect(await folded()).toBe(3 * 36);
      // Per gateway: what each sent and was folded adds up to what it committed.
      const perGateway = await pipeline.db.pool.query<{ gateway_id: string; n: number }>(
        "SELECT gateway_id, count(*)::int AS n FROM readings_folded GROUP BY 1 ORDER BY 1",
      );
      expect(perGateway.rows.reduce((a, r) => a + r.n, 0)).toBe(3 * 36);
      for (const r of perGateway.rows) expect(await folded(r.gateway_id)).toBe(r.n);
    },
  );

  it(
    "rtl_433 events without a time (stamped on receipt), repeated three times and heard by both gateways, " +
      "leave one row per transmission and metric",
    async () => {
      const client = await mqtt.connectAsync(MQTT_URL);
      const sensor = 4000 + Math.floor(Math.random() * 1000);
      const foldedBefore = await folded();
      const before = (await committed(pipeline.gateway)) + (await committed(second));
      try {
        for (const [temperature, humidity] of [
          [21.5, 40],
          [21.7, 41],
        ] as const) {
          const event = JSON.stringify({
            model: "Acurite-Tower",
            id: sensor,
            channel: "A",
            temperature_C: temperature,
            humidity,
          });
          for (let repeat = 0; repeat < 3; repeat++)
            await client.publishAsync(`${id}/rtl_433/pi/events`, event, { qos: 1 });
        }
      } finally {
        await client.endAsync();
      }
      await waitFor(
        async () => (await committed(pipeline.gateway)) + (await committed(second)) - before >= 2 * 6 * 2,
        "both gateways committed every event",
      );
      const gatewayReadings = (await committed(pipeline.gateway)) + (await committed(second)) - before;
      await waitFor(
        () => pipeline.gateway.status().outbox.readings === 0 && second.status().outbox.readings === 0,
        "both outboxes empty",
      );
      const query = () =>
        pipeline.db.pool.query<{ metric: string; value: number; sensor_time: boolean | null; gateway_id: string }>(
          "SELECT metric, value, sensor_time, gateway_id FROM readings WHERE sensor_id LIKE $1 ORDER BY metric, value",
          [`%${sensor}%`],
        );
      // Every gateway reading is written or folded by now: the outboxes only hold what JetStream has not taken.
      let seen = "";
      await waitFor(
        async () => {
          const n = (await query()).rows.length;
          const f = (await folded()) - foldedBefore;
          seen = `${n} rows + ${f} folded of ${gatewayReadings}`;
          return n + f >= gatewayReadings;
        },
        `every gateway reading written or folded`,
        20_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${seen}`);
      });
      const rows = await query();
      const distinct = new Set(rows.rows.map((r) => `${r.metric}|${r.value}`));
      expect(rows.rows.length).toBe(distinct.size);
      expect([...distinct]).toEqual(expect.arrayContaining(["humidity|40", "humidity|41"]));
      expect(rows.rows.every((r) => r.sensor_time === null)).toBe(true);
      // Every gateway reading is a row or a fold: 2 gateways x 6 events, each row stands for 12 - 1 folded copies.
      expect((await folded()) - foldedBefore).toBe(gatewayReadings - rows.rows.length);
    },
  );
});
