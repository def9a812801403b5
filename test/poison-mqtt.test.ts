/**
 * The reported failure, end to end: one bad MQTT message among hundreds of good ones used to
 * be admitted by the gateway, refused by the hub, and take its whole batch (up to 2,000 good
 * readings) to the dead letters. Now the gateway quarantines it with its reason, and every good
 * reading lands: Mosquitto → gateway → NATS JetStream → hub → PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { MQTT_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import { startPipeline, type Pipeline } from "./support/pipeline";

const id = uniqueId("pm");
let pipeline: Pipeline;
let publisher: mqtt.MqttClient;

beforeAll(async () => {
  // Batches of up to a second: the poisons are published among the good messages of one batch.
  pipeline = await startPipeline({
    id,
    gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "0", DATALAB_BATCH_MAX_AGE_MS: "1000" },
  });
  publisher = await mqtt.connectAsync(MQTT_URL);
});

afterAll(async () => {
  await publisher?.endAsync();
  await pipeline?.stop();
});

describe("one bad MQTT message among good ones", () => {
  it("is quarantined by the gateway with its reason; every good reading lands, nothing is dead-lettered", async () => {
    const sensor = `pm-${id}`;
    const t0 = Date.now() - 60_000;
    // Each written as the JSON text a client sends (escapes included), on a topic under the gateway's filter.
    const poisons: [string, string, string][] = [
      [`${id}/sensors/${"t".repeat(600)}`, JSON.stringify({ sensor, temperature: 1 }), "bad_source"],
      [`${id}/sensors/x`, `{"sensor":"${sensor}","\\udc00":1}`, "bad_metric"],
      [`${id}/sensors/x`, `[{"bn":"${sensor}","n":"t","u":"\\u0000","v":1}]`, "bad_unit"],
      [`${id}/sensors/x`, `[{"bn":"${sensor}","n":"t","u":"V\\ud800","v":1}]`, "bad_unit"],
      [`${id}/sensors/x`, `{"sensor":"${sensor}","temperature":1.7976931348623157e308}`, "bad_value"],
      [`${id}/sensors/x`, `{"sensor":"s\\udc00","temperature":1}`, "bad_sensor_id"],
    ];
    const good = 400;
    for (let i = 0; i < good; i++) {
      await publisher.publishAsync(
        `${id}/sensors/${sensor}`,
        JSON.stringify({ sensor, temperature: 20 + (i % 10), humidity: 40, ts: t0 + i }),
        { qos: 1 },
      );
      const poison = i % 60 === 30 ? poisons[(i - 30) / 60] : undefined;
      if (poison) await publisher.publishAsync(poison[0], poison[1], { qos: 1 });
    }
    await waitFor(
      async () => (await pipeline.count("sensor_id = $1", [sensor])) === good * 2,
      `all ${good * 2} good readings in Postgres`,
      60_000,
    );
    const quarantine = pipeline.gateway.status().quarantine;
    const want: Record<string, number> = {};
    for (const [, , reason] of poisons) want[reason] = (want[reason] ?? 0) + 1;
    for (const [reason, n] of Object.entries(want)) expect(quarantine[reason], reason).toBe(n);
    const dead = (await pipeline.hub.metrics.deadLetters.get()).values.reduce((a, v) => a + v.value, 0);
    expect(dead).toBe(0);
  });
});
