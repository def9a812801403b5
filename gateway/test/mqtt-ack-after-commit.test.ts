/**
 * MQTT QoS 1 acknowledged only after the commit, against the real Mosquitto: what was not
 * acknowledged comes back after a reconnect; a resend of a message that was committed (the
 * crash came between the commit and the acknowledgement) is acknowledged and not handed on
 * twice; and a broker with a small in-flight window is not held to one group per interval.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistry, silentLogger, type Registry } from "@datalab/shared";
import { MQTT_URL, startMosquitto, tempDir, uniqueId, waitFor } from "@datalab/shared/testing";
import { Gateway } from "../src/gateway";
import type { Ingest } from "../src/ingest/index";
import { DeliveryLog, type Delivery } from "../src/outbox/deliveries";
import { MqttSource } from "../src/sources/mqtt/source";
import { scrape, testWorld, worldConfig } from "./support/gateway";

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** Stands in for ingest: records what is handed on, and settles it at once or keeps it. */
function recorder(settle: boolean) {
  const values: number[] = [];
  const held: Delivery[] = [];
  const ingest = {
    receive(_s: string, payload: Buffer, _d: unknown, _c: unknown, _r: unknown, delivery?: Delivery) {
      values.push(Number(payload.toString()));
      if (!delivery) return;
      if (settle) delivery.owner.settled([delivery]);
      else held.push(delivery);
    },
    commitNow() {},
  } as unknown as Ingest;
  return { ingest, values, held };
}

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const v = (await m.get()).values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

describe("MQTT acknowledgements after the commit", () => {
  it(
    "a resend of a committed message is acknowledged and not " + "handed on again; the uncommitted ones come back",
    async () => {
      const dir = tempDir("datalab-acks-");
      stops.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, "outbox.db");
      const topic = `test/${uniqueId("acks")}`;
      const clientId = uniqueId("gw-acks-");
      const opts = (registry: Registry, deliveries: DeliveryLog) => ({
        url: MQTT_URL,
        routes: [{ filter: `${topic}/#`, decoder: () => [] }],
        clientId,
        persistentSession: true,
        sessionExpirySeconds: 60,
        receiveMaximum: 100,
        qos: 1 as const,
        deliveries,
        registry,
        logger: silentLogger(),
      });
      stops.push(async () => {
        const c = await mqtt.connectAsync(MQTT_URL, {
          clientId,
          clean: true,
          protocolVersion: 5,
          properties: { sessionExpiryInterval: 0 },
        });
        await c.endAsync();
      });
      const publisher = await mqtt.connectAsync(MQTT_URL, { clientId: uniqueId("pub-") });
      stops.push(() => publisher.endAsync());

      // First run: ten messages arrive, six are committed, and it stops before any acknowledgement.
      const db1 = new Database(file);
      const first = recorder(false);
      const log1 = new DeliveryLog(db1);
      const a = new MqttSource(opts(createRegistry("gateway", false), log1), first.ingest);
      await a.start();
      await waitFor(() => a.status().state === "connected", "the first run to connect");
      for (let i = 0; i < 10; i++) await publisher.publishAsync(`${topic}/s`, String(i), { qos: 1 });
      await waitFor(() => first.held.length === 10, "ten messages handed on");
      const committed = first.held.slice(0, 6);
      db1.transaction(() => log1.persist(committed))();
      log1.remember(committed);
      await a.stop();
      db1.close();

      // Second run, same session: the broker resends all ten (none was acknowledged).
      const db2 = new Database(file);
      stops.push(() => {
        db2.close();
      });
      const registry = createRegistry("gateway", false);
      const second = recorder(true);
      const b = new MqttSource(opts(registry, new DeliveryLog(db2)), second.ingest);
      stops.push(() => b.stop());
      await b.start();
      await waitFor(() => second.values.length === 4, "the four uncommitted messages again");
      expect(second.values).toEqual([6, 7, 8, 9]);
      expect(await counter(registry, "datalab_gateway_mqtt_resends_total", { outcome: "already_committed" })).toBe(6);
      expect(await counter(registry, "datalab_gateway_mqtt_resends_total", { outcome: "stored" })).toBe(4);

      // All ten were acknowledged this time: new messages flow, and nothing comes a third time.
      for (let i = 10; i < 15; i++) await publisher.publishAsync(`${topic}/s`, String(i), { qos: 1 });
      await waitFor(() => second.values.length === 9, "new messages after the resends");
      expect(second.values).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14]);
    },
  );

  it(
    "a resend after a reconnect, while the first copy still waits for its commit, is " +
      "not handed on twice; the acknowledgement follows the connection",
    async () => {
      const topic = `test/${uniqueId("reconnect")}`;
      const clientId = uniqueId("gw-reconnect-");
      stops.push(async () => {
        const c = await mqtt.connectAsync(MQTT_URL, {
          clientId,
          clean: true,
          protocolVersion: 5,
          properties: { sessionExpiryInterval: 0 },
        });
        await c.endAsync();
      });
      const registry = createRegistry("gateway", false);
      const r = recorder(false);
      const source = new MqttSource(
        {
          url: MQTT_URL,
          routes: [{ filter: `${topic}/#`, decoder: () => [] }],
          clientId,
          persistentSession: true,
          sessionExpirySeconds: 60,
          receiveMaximum: 100,
          qos: 1,
          registry,
          logger: silentLogger(),
        },
        r.ingest,
      );
      stops.push(() => source.stop());
      await source.start();
      await waitFor(() => source.status().state === "connected", "the source to connect");
      const publisher = await mqtt.connectAsync(MQTT_URL, { clientId: uniqueId("pub-") });
      stops.push(() => publisher.endAsync());
      for (let i = 0; i < 5; i++) await publisher.publishAsync(`${topic}/s`, String(i), { qos: 1 });
      await waitFor(() => r.held.length === 5, "five messages waiting for their commit");

      // The connection drops (not the process): the broker resends the five on the next one.
      const client = (source as unknown as { client: mqtt.MqttClient }).client;
      client.stream.destroy();
      await waitFor(
        async () =>
          (await counter(registry, "datalab_gateway_mqtt_resends_total", { outcome: "awaiting_commit" })) === 5,
        "the five resent",
      );
      expect(r.values).toEqual([0, 1, 2, 3, 4]);

      // Their group commits: acknowledged on the new connection, so a further reconnect brings
      // nothing back; a new message goes through alone.
      r.held[0]!.owner.settled(r.held.splice(0));
      await new Promise<void>((resolve) => client.stream.write(Buffer.alloc(0), () => resolve()));
      let connects = 0;
      client.on("connect", () => connects++);
      client.stream.destroy();
      await waitFor(() => connects > 0, "the source to reconnect");
      await publisher.publishAsync(`${topic}/s`, "5", { qos: 1 });
      // Had the five not been acknowledged, the broker would have resent them first, and with no
      // first copy waiting any more they would be handed on again, before the new message.
      await waitFor(() => r.values.length >= 6, "the new message");
      expect(r.values).toEqual([0, 1, 2, 3, 4, 5]);
    },
  );

  it("a message ingest failed on is handed on again when the broker resends it after a reconnect", async () => {
    const topic = `test/${uniqueId("threw")}`;
    const clientId = uniqueId("gw-threw-");
    stops.push(async () => {
      const c = await mqtt.connectAsync(MQTT_URL, {
        clientId,
        clean: true,
        protocolVersion: 5,
        properties: { sessionExpiryInterval: 0 },
      });
      await c.endAsync();
    });
    const registry = createRegistry("gateway", false);
    const r = recorder(true);
    let thrown = 0;
    const ingest = {
      ...r.ingest,
      receive(...args: Parameters<Ingest["receive"]>) {
        if (thrown++ === 0) throw new Error("ingest broke");
        r.ingest.receive(...args);
      },
    } as unknown as Ingest;
    const source = new MqttSource(
      {
        url: MQTT_URL,
        routes: [{ filter: `${topic}/#`, decoder: () => [] }],
        clientId,
        persistentSession: true,
        sessionExpirySeconds: 60,
        receiveMaximum: 100,
        qos: 1,
        registry,
        logger: silentLogger(),
      },
      ingest,
    );
    stops.push(() => source.stop());
    await source.start();
    await waitFor(() => source.status().state === "connected", "the source to connect");
    const publisher = await mqtt.connectAsync(MQTT_URL, { clientId: uniqueId("pub-") });
    stops.push(() => publisher.endAsync());
    await publisher.publishAsync(`${topic}/s`, "0", { qos: 1 });
    await waitFor(() => thrown === 1, "ingest to fail on the message");
    expect(r.values).toEqual([]);

    // Not acknowledged: the broker resends it on the next connection, and this time it is kept.
    (source as unknown as { client: mqtt.MqttClient }).client.stream.destroy();
    await waitFor(() => r.values.length === 1, "the resent message handed on");
    expect(r.values).toEqual([0]);
    expect(await counter(registry, "datalab_gateway_mqtt_resends_total", { outcome: "stored" })).toBe(1);
  });

  it(
    "MQTT 3.1.1 with Mosquitto's window of 20: groups close when the " +
      "window is nearly used, not at the 5 s interval",
    async () => {
      const broker = await startMosquitto({ extraConfig: ["max_inflight_messages 20"] });
      stops.push(() => broker.stop());
      const w = testWorld({
        DATALAB_MQTT_URL: broker.url,
        DATALAB_MQTT_PROTOCOL: "3.1.1",
        DATALAB_COMMIT_INTERVAL_MS: "5000",
        DATALAB_COMMIT_MAX_INTERVAL_MS: "5000",
      });
      stops.push(() => rmSync(w.dataDir, { recursive: true, force: true }));
      const gw = new Gateway(worldConfig(w), { logger: silentLogger() });
      stops.push(() => gw.stop());
      await gw.start();
      await waitFor(() => gw.status().sources[0]?.state === "connected", "MQTT to connect");
      const publisher = await mqtt.connectAsync(broker.url, { clientId: uniqueId("pub-") });
      stops.push(() => publisher.endAsync());
      const started = Date.now();
      await Promise.all(
        Array.from({ length: 600 }, (_, i) =>
          publisher.publishAsync(`${w.topic}/s`, `{"name":"w","value":${i}}`, { qos: 1 }),
        ),
      );
      const port = gw.httpPort;
      await waitFor(
        async () => (await scrape(port, "datalab_gateway_readings_committed_total")) === 600,
        "600 readings committed",
      );
      // One group per 5 s interval would take 600 / 20 × 5 s = 150 s; early commits take a few.
      expect(Date.now() - started).toBeLessThan(60_000);
    },
  );
});
