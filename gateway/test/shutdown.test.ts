import { rmSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subjects } from "@datalab/shared";
import { freePort, NATS_URL, waitFor } from "@datalab/shared/testing";
import type { GatewayStatus } from "../src/status";
import { GatewayProcess, getJson, mqttClient, publishRange, runCli, scrape, testWorld } from "./support/gateway";
import { countReadings, deleteStream, doubled, natsAdmin, readBatches } from "./support/stream";

let publisher: MqttClient;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  publisher = await mqttClient();
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await publisher.endAsync();
});

describe("SIGTERM", () => {
  it("stops intake, commits what is in memory, sends it all in a last drain, and exits 0", async () => {
    // Readings would wait in memory for 10 s and in the outbox for a minute: only the
    // shutdown path can get them to the stream this quickly.
    const w = testWorld({
      DATALAB_COMMIT_INTERVAL_MS: "10000",
      DATALAB_COMMIT_MAX_READINGS: "100000",
      DATALAB_BATCH_MAX_AGE_MS: "60000",
      DATALAB_BATCH_MAX_READINGS: "50000",
    });
    const admin = await natsAdmin(NATS_URL);
    cleanup.push(async () => {
      await deleteStream(admin.jsm, subjects(w.id).stream);
      await admin.nc.close();
      rmSync(w.dataDir, { recursive: true, force: true });
    });
    const gw = new GatewayProcess(w.env).start();
    cleanup.push(async () => void (await gw.kill()));
    const port = await gw.ready();
    await publishRange(publisher, `${w.topic}/t`, 0, 300);
    await waitFor(
      async () => (await scrape(port, "datalab_gateway_messages_received_total")) === 300,
      "the gateway to receive 300 messages",
    );
    expect((await getJson<GatewayStatus>(port, "/status")).outbox.readings).toBe(0);

    const exit = await gw.kill("SIGTERM");
    expect(exit.code).toBe(0);
    const stopped = gw.lines().find((l) => l.msg === "gateway stopped");
    expect(stopped).toMatchObject({ drained: true, readingsLeftInOutbox: 0, committedTotal: 300 });
    const c = countReadings(await readBatches(admin.jsm, subjects(w.id).stream));
    expect(doubled(c)).toEqual([]);
    expect(c.readings).toBe(300);

    // Afterwards the status command reads the file: empty, and says the gateway is offline.
    const status = await runCli(["status", "--json"], { ...w.env, DATALAB_HTTP_PORT: String(port) });
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout)).toMatchObject({ online: false, outbox: { readings: 0, inflight: null } });
  });

  it("uplink down: gives up the last drain at its deadline, exits 0, and the readings wait in the file", async () => {
    const deadPort = await freePort();
    const w = testWorld({ DATALAB_NATS_URL: `nats://127.0.0.1:${deadPort}`, DATALAB_SHUTDOWN_DRAIN_MS: "1000" });
    cleanup.push(() => rmSync(w.dataDir, { recursive: true, force: true }));
    const gw = new GatewayProcess(w.env).start();
    cleanup.push(async () => void (await gw.kill()));
    const port = await gw.ready();
    await publishRange(publisher, `${w.topic}/u`, 0, 100);
    await waitFor(
      async () => (await getJson<GatewayStatus>(port, "/status")).outbox.readings === 100,
      "100 readings in the outbox",
    );

    // While it runs, the status command asks it over HTTP.
    const env = { ...w.env, DATALAB_HTTP_PORT: String(port) };
    const online = await runCli(["status"], env);
    expect(online.code).toBe(0);
    expect(online.stdout).toMatch(/is running/);
    expect(online.stdout).toMatch(/100 readings in 100 messages/);
    expect(online.stdout).toMatch(/waiting for uplink/);
    const asJson = JSON.parse((await runCli(["status", "--json"], env)).stdout) as GatewayStatus;
    expect(asJson).toMatchObject({
      online: true,
      outbox: { readings: 100, policy: "drop_oldest" },
      forwarding: { state: "waiting_for_uplink" },
    });
    expect(asJson.outbox.oldestAgeSeconds).toBeGreaterThanOrEqual(0);

    const t0 = Date.now();
    const exit = await gw.kill("SIGTERM");
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(gw.lines().find((l) => l.msg === "gateway stopped")).toMatchObject({
      drained: false,
      readingsLeftInOutbox: 100,
    });

    const offline = await runCli(["status"], env);
    expect(offline.code).toBe(3);
    expect(offline.stdout).toMatch(/NO GATEWAY ANSWERS/);
    expect(offline.stdout).toMatch(/100 readings in 100 messages/);
  });
});
