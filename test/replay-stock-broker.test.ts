/**
 * A replay never loses readings silently, through a Mosquitto with its stock limits
 * (max_queued_messages 1000, max_inflight_messages 20, $SYS every 10 s): at --speed max it
 * either lands every valid row in Postgres and exits 0, or exits non-zero naming the shortfall.
 * Real Mosquitto, NATS, gateway, hub and Postgres; the replay is the real CLI.
 */
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, uniqueId, waitFor, type MosquittoBroker } from "@datalab/shared/testing";
import { startPipeline, type Pipeline } from "./support/pipeline";
import { replaySuthaharan, SENSOR_SPAN } from "./support/recorded";

const id = uniqueId("replaystock");
const fixtures = new URL("../../shared/fixtures/suthaharan/", import.meta.url);
let broker: MosquittoBroker;
let pipeline: Pipeline;

/** Valid values per file: rows × (humidity, temperature) that are numbers, and rows per mote. */
function expected(file: string): { values: number; rowsPerMote: Map<string, number> } {
  const [, ...rows] = readFileSync(file, "utf8").trim().split(/\r?\n/);
  let values = 0;
  const rowsPerMote = new Map<string, number>();
  for (const row of rows) {
    const [, mote, , humidity, temperature] = row.split(",");
    rowsPerMote.set(mote!, (rowsPerMote.get(mote!) ?? 0) + 1);
    for (const v of [humidity, temperature])
      if (v !== undefined && v.trim() !== "" && Number.isFinite(Number(v))) values += 1;
  }
  return { values, rowsPerMote };
}

/**
 * The count a SHORTFALL line names: this run's drops, or the broker's total when its count
 * before the run had expired.
 */
function droppedCount(stderr: string): number {
  const m = new RegExp(
    String.raw`SHORTFALL: the broker dropped (?:(\d+) messages during the replay|` +
      String.raw`messages during the replay \((\d+) since the broker started)`,
  ).exec(stderr);
  expect(m, stderr).not.toBeNull();
  return Number(m![1] ?? m![2]);
}

function replay(file: string, topic: string, extra: string[]) {
  return replaySuthaharan(file, {
    topic,
    start: "2010-06-01T00:00:00Z",
    extra: ["--sensor-prefix", `${topic.split("/").at(-1)}-`, ...extra],
    env: { ...process.env, DATALAB_MQTT_URL: broker.url, DATALAB_GATEWAY_URL: "" },
    timeoutMs: 240_000,
  });
}

beforeAll(async () => {
  // Mosquitto's own defaults, stated: startMosquitto otherwise lifts the queue limit.
  broker = await startMosquitto({ maxQueuedMessages: 1000, extraConfig: ["max_inflight_messages 20"] });
  pipeline = await startPipeline({
    id,
    mqttUrl: broker.url,
    topics: `${id}/#`,
    gatewayEnv: { DATALAB_MQTT_RTL433_TOPICS: "" },
  });
});

afterAll(async () => {
  await pipeline?.stop();
  await broker?.stop();
});

describe("replay through a stock Mosquitto (max_queued_messages 1000)", () => {
  it(
    "paced by the gateway (--gateway), all 18,914 rows of single-hop.csv at --speed max land in Postgres, " +
      "and the check says so",
    async () => {
      const file = new URL("single-hop.csv", fixtures).pathname;
      const e = expected(file);
      const r = await replay(file, `${id}/single`, ["--gateway", `http://127.0.0.1:${pipeline.gateway.httpPort}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/18914 rows read, 18914 published, 0 skipped/);
      expect(r.stderr).toContain(`gateway: committed all ${e.values} readings`);
      expect(r.stderr).toContain("broker: dropped no messages");
      await waitFor(
        async () => (await pipeline.count("sensor_id LIKE 'single-%'")) >= e.values,
        `${e.values} readings in Postgres`,
        120_000,
      );
      expect(await pipeline.count("sensor_id LIKE 'single-%'")).toBe(e.values);
    },
  );

  it(
    "after replaying multi-hop.csv with --interval, every mote's first reading has the same timestamp, " +
      "and its last n-1 intervals later",
    async () => {
      const file = new URL("multi-hop.csv", fixtures).pathname;
      const e = expected(file);
      const r = await replay(file, `${id}/multi`, ["--gateway", `http://127.0.0.1:${pipeline.gateway.httpPort}`]);
      expect(r.code, r.stderr).toBe(0);
      await waitFor(
        async () => (await pipeline.count("sensor_id LIKE 'multi-%'")) >= e.values,
        `${e.values} readings in Postgres`,
        120_000,
      );
      const span = await pipeline.db.pool.query<{ sensor_id: string; first: string; last: string }>(
        `SELECT ${SENSOR_SPAN} FROM readings WHERE sensor_id LIKE 'multi-%' GROUP BY 1 ORDER BY 1`,
      );
      expect(span.rows.map((x) => x.sensor_id)).toEqual(["multi-1", "multi-2", "multi-3", "multi-4"]);
      const start = Date.UTC(2010, 5, 1);
      for (const x of span.rows) {
        expect(Number(x.first), x.sensor_id).toBe(start);
        expect(Number(x.last), x.sensor_id).toBe(
          start + (e.rowsPerMote.get(x.sensor_id.slice("multi-".length))! - 1) * 1000,
        );
      }
    },
  );

  it(
    "unpaced (no --gateway), all 18,914 rows at --speed max: exit 0 with every valid row in Postgres, " +
      "or exit 1 naming the shortfall",
    async () => {
      const file = new URL("single-hop.csv", fixtures).pathname;
      const e = expected(file);
      const r = await replay(file, `${id}/unpaced`, []);
      expect(r.stderr).toMatch(/18914 rows read, 18914 published, 0 skipped/);
      if (r.code === 0) {
        expect(r.stderr).toContain("broker: dropped no messages");
        await waitFor(
          async () => (await pipeline.count("sensor_id LIKE 'unpaced-%'")) >= e.values,
          `${e.values} readings in Postgres`,
          120_000,
        );
        expect(await pipeline.count("sensor_id LIKE 'unpaced-%'")).toBe(e.values);
      } else {
        expect(r.code, r.stderr).toBe(1);
        expect(droppedCount(r.stderr)).toBeGreaterThan(0);
      }
      process.stderr.write(`unpaced replay through a stock Mosquitto: exit ${r.code}\n${r.stderr}\n`);
    },
  );

  it("unpaced, broker drops make the replay exit 1 naming the count, never 'done' with rows missing", async () => {
    // A subscriber with a persistent session that is away: the broker queues 1,000 messages
    // for it and drops the rest, as it does for a gateway that lags.
    const away = `${id}-away`;
    const c = await mqtt.connectAsync(broker.url, { clientId: away, clean: false });
    await c.subscribeAsync(`${id}/lagging/#`, { qos: 1 });
    await c.endAsync();
    const file = new URL("single-hop.csv", fixtures).pathname;
    const r = await replay(file, `${id}/lagging`, ["--limit", "3000"]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/3000 rows read, 3000 published/);
    expect(droppedCount(r.stderr)).toBeGreaterThanOrEqual(2000 - 20);
    expect(r.stderr).toContain("replay INCOMPLETE");
    expect(r.stderr).toContain("gateway: not checked");
  });
});
