import { rmSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger, subjects } from "@datalab/shared";
import { freePort, startNatsServer, waitFor, type NatsServer } from "@datalab/shared/testing";
import { Gateway } from "../src/gateway";
import { mqttClient, publishRange, scrape, testWorld, worldConfig, type TestWorld } from "./support/gateway";
import { countReadings, doubled, natsAdmin, readBatches } from "./support/stream";
import { wireMessagesIn } from "./support/outbox";

const MiB = 1024 * 1024;
let publisher: MqttClient;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  publisher = await mqttClient();
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await publisher.endAsync();
});

function track(w: TestWorld, g: Gateway, nats?: NatsServer): void {
  cleanup.push(async () => {
    await g.stop();
    await nats?.stop();
    if (nats) rmSync(nats.storeDir, { recursive: true, force: true });
    rmSync(w.dataDir, { recursive: true, force: true });
  });
}

async function streamCount(url: string, prefix: string) {
  const { nc, jsm } = await natsAdmin(url);
  try {
    return countReadings(await readBatches(jsm, subjects(prefix).stream));
  } finally {
    await nc.close();
  }
}

describe("NATS unreachable for a while", () => {
  it("buffers the readings (visible in /metrics), then drains them in order, each once", async () => {
    const nats = await startNatsServer();
    const w = testWorld();
    const g = new Gateway(
      worldConfig(w, { DATALAB_NATS_URL: nats.url, DATALAB_BATCH_MAX_AGE_MS: "50", DATALAB_BATCH_MAX_READINGS: "200" }),
      { logger: silentLogger() },
    );
    track(w, g, nats);
    await g.start();
    const port = g.httpPort;
    await waitFor(() => g.uplink.status().state === "connected", "the uplink to connect");

    await publishRange(publisher, `${w.topic}/a`, 0, 200);
    await waitFor(
      async () => (await streamCount(nats.url, w.id)).readings === 200,
      "the first readings to reach the stream",
    );

    await nats.stop();
    await waitFor(
      async () => (await scrape(port, "datalab_gateway_uplink_connected")) === 0,
      "the gateway to notice the outage",
    );
    await publishRange(publisher, `${w.topic}/a`, 200, 2_200);
    // The backlog grows and is visible to whoever watches the metrics.
    await waitFor(
      async () => (await scrape(port, "datalab_gateway_outbox_readings")) === 2_000,
      "2,000 readings to wait in the outbox",
    );
    expect(await scrape(port, "datalab_gateway_outbox_oldest_age_seconds")).toBeGreaterThanOrEqual(0);
    expect(await scrape(port, "datalab_gateway_uplink_state", { state: "connected" })).toBe(0);
    expect(g.status().forwarding.state).toBe("waiting_for_uplink");
    expect(g.status().lastError).toBeTruthy();

    await nats.start();
    await waitFor(() => g.status().outbox.readings === 0, "the backlog to drain", 30_000);
    expect(await scrape(port, "datalab_gateway_forwarded_readings_total")).toBe(2_200);
    const { jsm, nc } = await natsAdmin(nats.url);
    const batches = await readBatches(jsm, subjects(w.id).stream);
    await nc.close();
    const c = countReadings(batches);
    expect(doubled(c)).toEqual([]);
    expect(c.readings).toBe(2_200);
    for (let v = 0; v < 2_200; v++) expect(c.values.get(v), `value ${v}`).toBe(1);
    // In order: each batch starts where the one before ended.
    for (let i = 1; i < batches.length; i++) expect(batches[i]!.batch.firstSeq).toBe(batches[i - 1]!.batch.lastSeq + 1);
  });
});

describe("outbox full", () => {
  it("drop_oldest holds: drops counted, ingest goes on, file under its cap, space back after the drain", async () => {
    const natsPort = await freePort();
    const w = testWorld();
    const cap = 1 * MiB;
    const g = new Gateway(
      worldConfig(w, {
        DATALAB_NATS_URL: `nats://127.0.0.1:${natsPort}`,
        DATALAB_OUTBOX_MAX_BYTES: "1MiB",
        DATALAB_BATCH_MAX_AGE_MS: "50",
      }),
      { logger: silentLogger() },
    );
    let nats: NatsServer | undefined;
    cleanup.push(async () => {
      await g.stop();
      await nats?.stop();
      if (nats) rmSync(nats.storeDir, { recursive: true, force: true });
      rmSync(w.dataDir, { recursive: true, force: true });
    });
    await g.start();
    const port = g.httpPort;
    // Nobody listens on the NATS port: everything stays in the outbox. ~8,000 messages of
    // ~300 bytes on the wire is about twice the cap.
    const pad = "x".repeat(150);
    let maxFile = 0;
    for (let i = 0; i < 8_000; i += 200) {
      for (let k = i; k < i + 200; k++)
        publisher.publish(`${w.topic}/b`, `{"name":"sensor1","value":${k},"note":"${pad}"}`);
      await waitFor(
        () => g.metrics.messagesReceived.get().then((m) => m.values.reduce((s, v) => s + v.value, 0) >= i + 200),
        "the gateway to take the messages",
      );
      maxFile = Math.max(maxFile, g.outbox.fileBytes().total);
    }
    await waitFor(
      () => g.status().outbox.readings + (g.status().dropped.outbox_full ?? 0) === 8_000,
      "every reading to be committed or counted",
    );
    const s = g.status();
    expect(s.dropped.outbox_full).toBeGreaterThan(1_000);
    expect(await scrape(port, "datalab_gateway_dropped_readings_total", { reason: "outbox_full" })).toBe(
      s.dropped.outbox_full,
    );
    expect(maxFile).toBeLessThanOrEqual(cap);
    expect(await scrape(port, "datalab_gateway_outbox_file_bytes")).toBeLessThanOrEqual(cap);
    // Ingest went on: the newest reading is there, the oldest were dropped.
    const values = wireMessagesIn(g.outbox).map((m) => m.readings[0]!.value);
    expect(values.at(-1)).toBe(7_999);
    expect(values[0]).toBeGreaterThan(0);

    // The uplink comes back: the outbox drains, and the file gives its space back.
    nats = await startNatsServer({ port: natsPort });
    await waitFor(() => g.status().outbox.readings === 0, "the outbox to drain", 30_000);
    await waitFor(() => g.outbox.fileBytes().total < cap / 3, "the file to shrink", 20_000);
    const c = await streamCount(nats.url, w.id);
    expect(doubled(c)).toEqual([]);
    expect(c.readings).toBe(values.length);
  });
});
