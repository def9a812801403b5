/**
 * One decoder per format, end to end: a real Gateway reads the real Mosquitto and a JSON-lines
 * radio on a pty pair (socat); the same bytes published over MQTT and written on the serial
 * line become the same reading in the outbox. Units: what the message states or the operator
 * configured (DATALAB_UNITS), in the canonical unit beside rtl_433's; the rest counted, and
 * shown by the status and /metrics. NATS points at a closed port: the readings stay in the
 * outbox to be looked at.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { freePort, tempDir, waitFor } from "@datalab/shared/testing";
import type { MqttClient } from "mqtt";
import { Gateway } from "../src/gateway";
import { formatStatus } from "../src/status";
import { mqttClient, scrape, testWorld, worldConfig, type TestWorld } from "./support/gateway";
import { NodeEnd, PtyPair, requireSocat } from "./serial-pty";
import { wireMessagesIn } from "./support/outbox";

interface StoredReading {
  sensorId: string;
  metric: string;
  value: number;
  unit: string | null;
  ts: number;
  seq: number;
  source: string;
}

function outboxReadings(g: Gateway): StoredReading[] {
  return wireMessagesIn(g.outbox).flatMap((wire) =>
    wire.readings.map((r) => ({ ...(r as Omit<StoredReading, "source">), source: wire.source })),
  );
}

describe("the same bytes over MQTT and a serial JSON-lines radio (needs socat)", () => {
  let dir: string;
  let w: TestWorld;
  let g: Gateway;
  let pty: PtyPair;
  let node: NodeEnd;
  let client: MqttClient;

  beforeAll(async () => {
    requireSocat();
    dir = tempDir("datalab-pty-");
    pty = new PtyPair(dir, "jsonl");
    await pty.plug();
    w = testWorld();
    g = new Gateway(
      worldConfig(w, {
        DATALAB_NATS_URL: `nats://127.0.0.1:${await freePort()}`,
        DATALAB_SHUTDOWN_DRAIN_MS: "0",
        DATALAB_COMMIT_INTERVAL_MS: "20",
        DATALAB_MQTT_PERSISTENT: "false",
        DATALAB_SERIAL_PORTS: `${pty.radio}:jsonl`,
        DATALAB_UNITS: "pressure=hPa",
      }),
      { logger: silentLogger() },
    );
    await g.start();
    client = await mqttClient();
    await waitFor(
      () => g.status().sources.every((s) => s.state === "connected"),
      "MQTT and the serial port to connect",
    );
    node = await NodeEnd.open(pty.node);
  });

  afterAll(async () => {
    await client?.endAsync();
    await node?.close();
    await g?.stop();
    await pty?.unplug();
    rmSync(dir, { recursive: true, force: true });
    if (w) rmSync(w.dataDir, { recursive: true, force: true });
  });

  it(
    '{"id":"n1","temperature":20.5,"timestamp":1764270000} gives the same ' +
      "single reading over MQTT and over the serial line",
    async () => {
      const bytes = '{"id":"n1","temperature":20.5,"timestamp":1764270000}';
      await client.publishAsync(`${w.id}/sensors/n1`, bytes, { qos: 1 });
      await node.write(`${bytes}\n`);
      const got = await waitFor(() => {
        const r = outboxReadings(g).filter((x) => x.sensorId === "n1");
        return r.length === 2 ? r : undefined;
      }, "the reading from both carriers");
      // The reading itself, without its key in the outbox (seq) and where it came from.
      const bySource = new Map(got.map(({ source, seq: _seq, ...reading }) => [source.split(":")[0], reading]));
      const expected = { sensorId: "n1", metric: "temperature", value: 20.5, unit: null, ts: 1764270000000 };
      expect(bySource.get("mqtt")).toMatchObject(expected);
      expect(bySource.get("serial")).toMatchObject(expected);
      expect(bySource.get("serial")).toEqual(bySource.get("mqtt"));
    },
  );

  it(
    "a pressure configured as hPa is stored in Pa beside rtl_433's " +
      "pressure_hPa; the unstated battery stays unknown and is counted",
    async () => {
      await client.publishAsync(`${w.id}/sensors/w1`, '{"sensor":"w1","pressure":1013.25,"battery":87}', { qos: 1 });
      await client.publishAsync(
        `${w.id}/rtl_433/pi/events`,
        '{"model":"Fineoffset-WH25","id":7,"pressure_hPa":1001.7,"current":2.5}',
        { qos: 1 },
      );
      const got = await waitFor(() => {
        const r = outboxReadings(g).filter((x) => x.sensorId === "w1" || x.sensorId === "rtl433-Fineoffset-WH25-7");
        return r.length === 4 ? r : undefined;
      }, "four readings");
      const rows = got.map((r) => [r.sensorId, r.metric, r.value, r.unit]).sort();
      expect(rows).toEqual([
        ["rtl433-Fineoffset-WH25-7", "current", 2.5, null],
        ["rtl433-Fineoffset-WH25-7", "pressure", 100170, "Pa"],
        ["w1", "battery", 87, null],
        ["w1", "pressure", 101325, "Pa"],
      ]);
      const status = g.status();
      expect(status.fields).toMatchObject({ "jsonl:battery:unit_unknown": 1, "rtl433:current:unit_unknown": 1 });
      expect(formatStatus(status, "test")).toMatch(/fields\s+unit unknown: .*jsonl battery 1/);
      expect(
        await scrape(g.httpPort, "datalab_gateway_fields_total", {
          format: "rtl433",
          field: "current",
          outcome: "unit_unknown",
        }),
      ).toBe(1);
    },
  );
});
