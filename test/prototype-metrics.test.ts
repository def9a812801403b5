/**
 * Metric names that are Object.prototype's own keys (`toString`, `constructor`, `valueOf`,
 * `__proto__`) are metrics like any other: an inherited-property lookup once quarantined them
 * as invalid. End to end: MQTT → gateway → NATS → hub → Postgres, readings and the sensor's
 * newest values.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { MQTT_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import { startPipeline, type Pipeline } from "./support/pipeline";

const id = uniqueId("proto");
const sensor = `proto-${id}`;
const NAMES = ["toString", "constructor", "valueOf", "__proto__", "hasOwnProperty"];
let pipeline: Pipeline;
let publisher: mqtt.MqttClient;

beforeAll(async () => {
  pipeline = await startPipeline({ id, gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "0" } });
  publisher = await mqtt.connectAsync(MQTT_URL);
});

afterAll(async () => {
  await publisher?.endAsync();
  await pipeline?.stop();
});

describe("metrics named like Object.prototype's keys", () => {
  it("land in Postgres as readings and as the sensor's newest values, none quarantined", async () => {
    const payload = `{"sensor":"${sensor}",${NAMES.map((n, i) => `"${n}":${i + 1}`).join(",")},"ts":1764270000}`;
    await publisher.publishAsync(`${id}/sensors/${sensor}`, payload, { qos: 1 });
    await waitFor(
      async () => (await pipeline.count("sensor_id = $1", [sensor])) === NAMES.length,
      "every reading in Postgres",
    );
    const rows = await pipeline.db.pool.query<{ metric: string; value: number; unit: string | null }>(
      "SELECT metric, value, unit FROM readings WHERE sensor_id = $1 ORDER BY value",
      [sensor],
    );
    expect(rows.rows).toEqual(NAMES.map((metric, i) => ({ metric, value: i + 1, unit: null })));
    expect(pipeline.gateway.status().quarantine).toEqual({});
    const latest = await waitFor(async () => {
      const r = await pipeline.db.pool.query<{ last_values: Record<string, { value: number }> }>(
        "SELECT last_values FROM sensors WHERE sensor_id = $1",
        [sensor],
      );
      return r.rows[0];
    }, "the sensor's row");
    expect(Object.keys(latest.last_values).sort()).toEqual([...NAMES].sort());
  });
});
