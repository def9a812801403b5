import { rmSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subjects } from "@datalab/shared";
import { NATS_URL, waitFor } from "@datalab/shared/testing";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { committedInFile, GatewayProcess, getJson, mqttClient, testWorld, type TestWorld } from "./support/gateway";
import { countReadings, deleteStream, doubled, natsAdmin, readBatches } from "./support/stream";
import type { GatewayStatus } from "../src/status";

const COMMIT_MAX_READINGS = 500;

let admin: { nc: NatsConnection; jsm: JetStreamManager };
let w: TestWorld;
let gw: GatewayProcess | undefined;
const logs: string[] = [];
let publisher: MqttClient;
const clientId = () => `${w.id}-gw`;

beforeAll(async () => {
  admin = await natsAdmin(NATS_URL);
  w = testWorld({
    // The broker keeps QoS 1 messages for the gateway while it is down: in-flight messages at
    // the kill are redelivered, so what is lost is only what the gateway had acked but not committed.
    DATALAB_MQTT_PERSISTENT: "true",
    DATALAB_MQTT_SESSION_EXPIRY: "120",
    DATALAB_COMMIT_MAX_READINGS: String(COMMIT_MAX_READINGS),
    DATALAB_COMMIT_INTERVAL_MS: "100",
    DATALAB_BATCH_MAX_READINGS: "300",
  });
  w.env.DATALAB_MQTT_CLIENT_ID = clientId();
  publisher = await mqttClient();
});

afterAll(async () => {
  await gw?.kill();
  await publisher?.endAsync();
  // End the broker's persistent session for this test's client id.
  const c = await mqttClient({ clientId: clientId(), clean: true, properties: { sessionExpiryInterval: 0 } });
  await c.endAsync();
  await deleteStream(admin.jsm, subjects(w.id).stream);
  await admin.nc.close();
  rmSync(w.dataDir, { recursive: true, force: true });
});

/**
 * Publish counters from `from` on with QoS 1, paced at about 5,000/s so the broker never has
 * to shed, until `stop.now` is set or `to` is reached. Resolves with the next counter.
 */
async function flood(from: number, to: number, stop: { now: boolean } = { now: false }): Promise<number> {
  let i = from;
  while (i < to && !stop.now) {
    const chunk: Promise<unknown>[] = [];
    for (const end = Math.min(to, i + 100); i < end; i++)
      chunk.push(publisher.publishAsync(`${w.topic}/s1`, `{"name":"sensor1","value":${i}}`, { qos: 1 }));
    await Promise.all(chunk);
    await new Promise((r) => setTimeout(r, 20));
  }
  return i;
}

async function startGateway(): Promise<number> {
  if (gw) logs.push(gw.log);
  gw = new GatewayProcess(w.env).start();
  return gw.ready();
}

describe("kill -9 of the gateway in the middle of a flood", () => {
  it("forwards every committed reading exactly once, and loses at most the group-commit window per kill", async () => {
    let port = await startGateway();
    const phases: { published: number; committedAtKill: number }[] = [];
    let next = 0;
    for (let phase = 0; phase < 2; phase++) {
      // Kill the gateway while the flood goes on (and it is forwarding), then stop the
      // publisher: a sensor network does not stop, but the broker keeps only 1,000 messages
      // per session, and this test measures the gateway's losses, not the broker's.
      const stop = { now: false };
      const floodDone = flood(next, next + 100_000, stop);
      const target = committedInFile(w.dataDir) + 3_000;
      await waitFor(() => committedInFile(w.dataDir) >= target, "3,000 readings of the flood to be committed", 20_000);
      const killed = await gw!.kill("SIGKILL");
      stop.now = true;
      expect(killed.signal).toBe("SIGKILL");
      next = await floodDone;
      phases.push({ published: next, committedAtKill: committedInFile(w.dataDir) });
      port = await startGateway();
    }
    // A last, quiet stretch, then let everything drain.
    await flood(next, next + 500);
    next += 500;
    // Drained: the last counter published is in the stream, and the outbox is empty.
    await waitFor(
      async () => {
        const s = await getJson<GatewayStatus>(port, "/status");
        if (s.outbox.readings > 0) return false;
        return countReadings(await readBatches(admin.jsm, subjects(w.id).stream)).values.has(next - 1);
      },
      "the outbox to drain",
      30_000,
    );
    const batches = await readBatches(admin.jsm, subjects(w.id).stream);
    const c = countReadings(batches);
    const committed = committedInFile(w.dataDir);

    // Nothing forwarded twice: no reading (instance, seq) in two stored batches.
    expect(doubled(c)).toEqual([]);
    // Every committed reading reached the stream: seqs 1..committed, each once.
    expect(c.copies.size).toBe(committed);
    const instance = batches[0]!.batch.instance;
    for (let s = 1; s <= committed; s++) expect(c.copies.get(`${instance}:${s}`), `seq ${s}`).toBe(1);
    // Everything committed before each kill is in there (implied above; said explicitly).
    for (const p of phases) expect(p.committedAtKill).toBeLessThanOrEqual(committed);

    // Loss per kill, counted by the publisher's counters: within the stated window.
    let from = 0;
    const lost: number[] = [];
    for (const p of [...phases, { published: next, committedAtKill: committed }]) {
      let missing = 0;
      for (let v = from; v < p.published; v++) if (!c.values.has(v)) missing++;
      lost.push(missing);
      from = p.published;
    }
    // A QoS 1 redelivery of a message the gateway had committed but not yet acked becomes a
    // second reading (new seq): MQTT's at-least-once, not a double forward. Count it.
    const mqttRedeliveries = [...c.values.values()].filter((n) => n > 1).length;
    const resent = [...logs, gw!.log].join("").split("resending the batch that was in flight").length - 1;
    const deduped = [...logs, gw!.log].join("").split("batch was already in the stream").length - 1;
    console.info(
      `kill -9 test: published ${next}, committed ${committed}, lost per phase ${lost.join("/")}, ` +
        `MQTT redeliveries ${mqttRedeliveries}, batches ${batches.length}, ` +
        `in-flight batches resent at restart ${resent} (of which JetStream had ${deduped})`,
    );
    expect(lost[0]).toBeLessThanOrEqual(COMMIT_MAX_READINGS);
    expect(lost[1]).toBeLessThanOrEqual(COMMIT_MAX_READINGS);
    expect(lost[2]).toBe(0);
  });
});
