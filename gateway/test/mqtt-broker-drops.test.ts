/**
 * The gateway shows what the broker dropped: a real Mosquitto with its stock queue limit
 * (max_queued_messages 1000) and $SYS every second, a real gateway, and a subscriber with a
 * persistent session that is away, for which the broker drops what its queue cannot hold.
 */
import { rmSync } from "node:fs";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { metricValue, silentLogger, subjects } from "@datalab/shared";
import { NATS_URL, startMosquitto, waitFor, type MosquittoBroker } from "@datalab/shared/testing";
import { Gateway } from "../src/gateway";
import { testWorld, worldConfig } from "./support/gateway";
import { deleteStream, natsAdmin } from "./support/stream";

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe("broker-side drops ($SYS/broker/publish/messages/dropped)", () => {
  it(
    "are a gateway metric (the broker's count) and a warning on the " +
      "status, when a stock Mosquitto drops QoS 1 messages",
    async () => {
      const broker: MosquittoBroker = await startMosquitto({
        maxQueuedMessages: 1000,
        extraConfig: ["max_inflight_messages 20", "sys_interval 1"],
      });
      cleanup.push(() => broker.stop());
      const w = testWorld({ DATALAB_MQTT_URL: broker.url });
      const admin = await natsAdmin(NATS_URL);
      cleanup.push(async () => {
        await deleteStream(admin.jsm, subjects(w.id).stream);
        await admin.nc.close();
        rmSync(w.dataDir, { recursive: true, force: true });
      });
      const gw = new Gateway(worldConfig(w), { logger: silentLogger() });
      cleanup.push(() => gw.stop());
      await gw.start();
      const dropped = () => metricValue(gw.metrics.registry, "datalab_gateway_mqtt_broker_dropped_messages");
      // A fresh broker publishes its count (0) at its first $SYS update.
      await waitFor(async () => (await dropped()) === 0, "the broker's first $SYS update (0 dropped)");
      expect(gw.status().sources.find((s) => s.name === "mqtt-broker")?.warning).toBeUndefined();

      const away = await mqtt.connectAsync(broker.url, { clientId: `${w.id}-away`, clean: false });
      await away.subscribeAsync(`${w.id}/away/#`, { qos: 1 });
      await away.endAsync();
      const pub = await mqtt.connectAsync(broker.url);
      for (let i = 0; i < 1500; i++) await pub.publishAsync(`${w.id}/away/x`, String(i), { qos: 1 });
      await pub.endAsync();

      await waitFor(async () => (await dropped()) >= 500 - 20, "the broker's drops in the gateway's metric", 30_000);
      expect(await dropped()).toBeLessThanOrEqual(500);
      expect(gw.status().sources.find((s) => s.name === "mqtt-broker")?.warning).toMatch(
        /the MQTT broker dropped messages while the gateway ran \(\d+ at .*; \d+ since the broker started/,
      );
      expect(gw.status().sources[0]?.name).toBe("mqtt");
    },
  );
});
