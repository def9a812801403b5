import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger, subjects } from "@datalab/shared";
import { NATS_URL, waitFor } from "@datalab/shared/testing";
import { Gateway } from "../src/gateway";
import { mqttClient, publishRange, testWorld, worldConfig } from "./support/gateway";
import { countReadings, deleteStream, natsAdmin, readBatches } from "./support/stream";

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe("MQTT persistent session", () => {
  it("the broker keeps QoS 1 messages while the gateway is stopped, and they arrive after the restart", async () => {
    const w = testWorld({
      DATALAB_MQTT_PERSISTENT: "true",
      DATALAB_MQTT_SESSION_EXPIRY: "60",
      DATALAB_BATCH_MAX_AGE_MS: "50",
    });
    const clientId = `${w.id}-gw`;
    w.env.DATALAB_MQTT_CLIENT_ID = clientId;
    const admin = await natsAdmin(NATS_URL);
    cleanup.push(async () => {
      // End the session at the broker, then the stream and files.
      const c = await mqttClient({ clientId, clean: true, properties: { sessionExpiryInterval: 0 } });
      await c.endAsync();
      await deleteStream(admin.jsm, subjects(w.id).stream);
      await admin.nc.close();
      rmSync(w.dataDir, { recursive: true, force: true });
    });
    const stored = async () => countReadings(await readBatches(admin.jsm, subjects(w.id).stream).catch(() => []));
    const publisher = await mqttClient();
    cleanup.push(() => publisher.endAsync());

    const first = new Gateway(worldConfig(w), { logger: silentLogger() });
    await first.start();
    // Status says when the broker confirmed the subscription: before that, a new session gets nothing.
    await waitFor(() => first.status().sources[0]?.subscribed === true, "the broker to confirm the subscription");
    expect(first.status().sources[0]?.state).toBe("connected");
    await publishRange(publisher, `${w.topic}/p`, 0, 10, 1);
    await waitFor(async () => (await stored()).readings === 10, "the first readings to arrive");
    await first.stop();

    // The gateway is down: QoS 1 messages wait at the broker, in the gateway's session.
    await publishRange(publisher, `${w.topic}/p`, 10, 310, 1);

    const second = new Gateway(worldConfig(w), { logger: silentLogger() });
    cleanup.push(() => second.stop());
    await second.start();
    await waitFor(async () => (await stored()).readings === 310, "the messages kept by the broker to arrive");
    const c = await stored();
    for (let v = 0; v < 310; v++) expect(c.values.get(v), `value ${v}`).toBe(1);
  });
});
