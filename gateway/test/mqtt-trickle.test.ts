/**
 * A trickle of MQTT QoS 1 messages waits for its commit far longer than the 500 ms bound
 * (to spare the SD card), because nothing in it is at risk: against the real Mosquitto, a
 * kill -9 while such a group waits loses none of it, the broker resends it to the next run,
 * and every reading reaches the stream once.
 */
import { rmSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subjects } from "@datalab/shared";
import { NATS_URL, waitFor } from "@datalab/shared/testing";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { committedInFile, GatewayProcess, mqttClient, scrape, testWorld, type TestWorld } from "./support/gateway";
import { countReadings, deleteStream, doubled, natsAdmin, readBatches } from "./support/stream";

const MESSAGES = 20;

let admin: { nc: NatsConnection; jsm: JetStreamManager };
let w: TestWorld;
let gw: GatewayProcess | undefined;
let publisher: MqttClient;

beforeAll(async () => {
  admin = await natsAdmin(NATS_URL);
  w = testWorld({ DATALAB_MQTT_PERSISTENT: "true", DATALAB_MQTT_SESSION_EXPIRY: "120" });
  w.env.DATALAB_MQTT_CLIENT_ID = `${w.id}-gw`;
  publisher = await mqttClient();
});

afterAll(async () => {
  await gw?.kill();
  await publisher?.endAsync();
  const c = await mqttClient({ clientId: `${w.id}-gw`, clean: true, properties: { sessionExpiryInterval: 0 } });
  await c.endAsync();
  await deleteStream(admin.jsm, subjects(w.id).stream);
  await admin.nc.close();
  rmSync(w.dataDir, { recursive: true, force: true });
});

describe("a trickle the broker can resend (MQTT QoS 1, persistent session)", () => {
  it("waits past the 500 ms bound uncommitted, loses nothing to a kill -9 then, and is delivered once", async () => {
    // A bound long enough that the group surely still waits when the kill comes.
    gw = new GatewayProcess({ ...w.env, DATALAB_COMMIT_RESENDABLE_MAX_INTERVAL_MS: "60000" }).start();
    let port = await gw.ready();
    for (let i = 0; i < MESSAGES; i++) {
      await publisher.publishAsync(`${w.topic}/s1`, `{"name":"sensor1","value":${i}}`, { qos: 1 });
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(
      async () => (await scrape(port, "datalab_gateway_messages_received_total")) >= MESSAGES,
      `the gateway to receive the ${MESSAGES} messages`,
      10_000,
    );
    // Well past the 500 ms bound of a group that cannot be resent: this one still waits.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await scrape(port, "datalab_gateway_readings_committed_total")).toBe(0);
    const killed = await gw.kill("SIGKILL");
    expect(killed.signal).toBe("SIGKILL");
    expect(committedInFile(w.dataDir)).toBe(0);

    // The next run, with the default bound (5 s): the broker resends what was never acknowledged.
    gw = new GatewayProcess(w.env).start();
    port = await gw.ready();
    await waitFor(
      async () => countReadings(await readBatches(admin.jsm, subjects(w.id).stream)).values.size === MESSAGES,
      `the ${MESSAGES} readings in the stream`,
      30_000,
    );
    const c = countReadings(await readBatches(admin.jsm, subjects(w.id).stream));
    expect(doubled(c)).toEqual([]);
    expect([...c.values.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i));
    expect(committedInFile(w.dataDir)).toBe(MESSAGES);
  });
});
