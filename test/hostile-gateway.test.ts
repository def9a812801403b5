/**
 * Two gateways and a hub under the documented NATS permission set (deploy/nats/auth.conf,
 * run as it is on a server of the test's own), one gateway hostile: a raw NATS client with
 * gateway A's credentials that knows gateway B's instance id. It tries to read B's batches
 * and PubAcks, to forge B's batches, acks and reports, and to make B's next batches vanish
 * by publishing, on its own subject, the message ids B would use next. The honest gateway
 * B runs unchanged: every one of its readings must land in the hub's Postgres.
 */
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt, { type MqttClient } from "mqtt";
import { connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import {
  batchMsgId,
  encodeBatch,
  metricValue,
  silentLogger,
  subjects,
  BATCH_FORMAT_VERSION,
  type Batch,
} from "@datalab/shared";
import {
  createTestDatabase,
  MQTT_URL,
  startNatsServer,
  tempDir,
  uniqueId,
  waitFor,
  type NatsServer,
  type TestDatabase,
} from "@datalab/shared/testing";
import { Gateway, loadGatewayConfig } from "@datalab/gateway";
import { Hub, hubStatus, listDeadLetters, loadHubConfig, replayDeadLetters } from "@datalab/hub";

const AUTH_CONF = fileURLToPath(new URL("../deploy/nats/auth.conf", import.meta.url));
// The names auth.conf uses: its gateways and the default prefix.
const A = "gateway-a";
const B = "gateway-b";
const subj = subjects("datalab");
const PASSWORDS = {
  DATALAB_NATS_HUB_PASSWORD: `hub-${randomBytes(8).toString("hex")}`,
  DATALAB_NATS_GATEWAY_A_PASSWORD: `a-${randomBytes(8).toString("hex")}`,
  DATALAB_NATS_GATEWAY_B_PASSWORD: `b-${randomBytes(8).toString("hex")}`,
};
const READINGS = 300;

const id = uniqueId("hostile");
let nats: NatsServer;
let db: TestDatabase;
let hub: Hub;
let honest: Gateway;
let hostile: NatsConnection;
let publisher: MqttClient;
const dataDir = tempDir("datalab-hostile-");

beforeAll(async () => {
  // auth.conf reads the passwords from the server's environment, as it would in production.
  Object.assign(process.env, PASSWORDS);
  try {
    nats = await startNatsServer({ config: readFileSync(AUTH_CONF, "utf8") });
  } finally {
    for (const k of Object.keys(PASSWORDS)) delete process.env[k];
  }
  db = await createTestDatabase();
  hub = new Hub(
    loadHubConfig({
      env: {
        DATALAB_NATS_URL: nats.url,
        DATALAB_NATS_USER: "hub",
        DATALAB_NATS_PASSWORD: PASSWORDS.DATALAB_NATS_HUB_PASSWORD,
        DATALAB_PG_URL: db.url,
        DATALAB_HTTP_PORT: "0",
        DATALAB_HTTP_HOST: "127.0.0.1",
      },
    }),
    { logger: silentLogger() },
  );
  await hub.start();
  honest = new Gateway(
    loadGatewayConfig({
      env: {
        DATALAB_NATS_URL: nats.url,
        DATALAB_NATS_USER: B,
        DATALAB_NATS_PASSWORD: PASSWORDS.DATALAB_NATS_GATEWAY_B_PASSWORD,
        DATALAB_NATS_ENSURE_STREAM: "false",
        DATALAB_GATEWAY_ID: B,
        DATALAB_MQTT_URL: MQTT_URL,
        DATALAB_MQTT_TOPICS: `${id}/sensors/#`,
        DATALAB_MQTT_RTL433_TOPICS: "",
        DATALAB_MQTT_CLIENT_ID: `${id}-b`,
        DATALAB_DATA_DIR: dataDir,
        DATALAB_HTTP_PORT: "0",
        DATALAB_HTTP_HOST: "127.0.0.1",
        // One reading per batch: B's old message ids (gateway:instance:first-last) were then
        // entirely predictable, the strongest form of the attack.
        DATALAB_BATCH_MAX_READINGS: "1",
        DATALAB_REPORT_INTERVAL_MS: "500",
      },
    }),
    { logger: silentLogger() },
  );
  await honest.start();
  hostile = await connect({
    servers: nats.url,
    user: A,
    pass: PASSWORDS.DATALAB_NATS_GATEWAY_A_PASSWORD,
    inboxPrefix: `_INBOX_${A}`,
  });
  publisher = await mqtt.connectAsync(MQTT_URL, { clientId: `${id}-pub` });
});

afterAll(async () => {
  await publisher?.endAsync();
  await hostile?.close();
  await honest?.stop();
  await hub?.stop();
  await db?.drop();
  await nats?.stop();
  if (nats) rmSync(nats.storeDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

async function rows(gatewayId: string): Promise<{ n: number; seqs: number }> {
  const r = await db.pool.query<{ n: string; seqs: string }>(
    "SELECT count(*) AS n, count(DISTINCT seq) AS seqs FROM readings WHERE gateway_id = $1",
    [gatewayId],
  );
  return { n: Number(r.rows[0]!.n), seqs: Number(r.rows[0]!.seqs) };
}

/** One valid batch of A's own, one reading: the hub stores it as A's. */
function hostileBatch(seq: number): Uint8Array {
  const now = Date.now();
  const batch: Batch = {
    v: BATCH_FORMAT_VERSION,
    gatewayId: A,
    instance: "hostile",
    firstSeq: seq,
    lastSeq: seq,
    sentAt: now,
    messages: [
      {
        source: "mqtt:hostile",
        receivedAt: now,
        payload: "{}",
        encoding: "utf8",
        readings: [{ seq, sensorId: "hostile-sensor", metric: "value", value: seq, unit: null, ts: now - seq * 1_000 }],
      },
    ],
  };
  return encodeBatch(batch);
}

describe("a hostile gateway under the documented permissions", () => {
  it("can neither read nor forge nor suppress the honest gateway's batches; every reading of B lands", async () => {
    const instance = honest.status().instance;
    expect(instance).toMatch(/^[0-9a-f]+$/);

    // 1. Listening: every subject where B's batches, PubAcks or reports travel.
    const received: Msg[] = [];
    const refused = new Set<string>();
    const listen = (subject: string): Subscription =>
      hostile.subscribe(subject, {
        callback: (err: Error | null, m: Msg) => {
          if (err) refused.add(`subscribe ${subject}`);
          else received.push(m);
        },
      });
    const listens = [
      "_INBOX.>",
      `_INBOX_${B}.>`,
      ">",
      "datalab.>",
      subj.allReadings,
      subj.readings(B),
      subj.status(B),
      "$JS.ACK.>",
      "$JS.API.>",
    ];
    for (const s of listens) listen(s);

    // 2. Forging: B's batches, B's reports, a PubAck on B's inbox, acks of the hub's
    // consumers, and the JetStream API (a consumer or a direct get would read B's batches).
    const errors: string[] = [];
    void (async () => {
      for await (const s of hostile.status())
        if (s.type === "error") errors.push(String((s as { error: Error }).error.message));
    })();
    const forged = [
      subj.readings(B),
      subj.status(B),
      `_INBOX_${B}.x.y`,
      `$JS.ACK.${subj.stream}.postgres.1.1.1.1.0`,
      `$JS.API.CONSUMER.CREATE.${subj.stream}`,
      `$JS.API.DIRECT.GET.${subj.stream}`,
      "$JS.API.INFO",
    ];
    for (const s of forged) hostile.publish(s, hostileBatch(1));
    await hostile.flush();

    await waitFor(
      () =>
        listens.every((s) => refused.has(`subscribe ${s}`)) &&
        forged.every((s) => errors.some((e) => e.includes(`Publish to "${s}"`))),
      "the server to refuse every subscription and publish the hostile gateway tried",
    ).catch((err: Error) => {
      throw new Error(`${err.message}; refused: ${[...refused].join(", ")}; errors: ${errors.join(" | ")}`);
    });

    // 3. Suppressing: B's next message ids, in the old predictable form and in the new form
    // with a guessed digest, each published first on A's own subject (which JetStream takes:
    // its duplicate window spans the whole stream).
    const js = jetstream(hostile);
    let seq = 0;
    for (let s = 1; s <= READINGS + 20; s++) {
      const range = batchMsgId({ gatewayId: B, instance, firstSeq: s, lastSeq: s });
      for (const msgID of [
        range,
        batchMsgId({ gatewayId: B, instance, firstSeq: s, lastSeq: s }, randomBytes(16).toString("base64url")),
      ]) {
        const ack = await js.publish(subj.readings(A), hostileBatch(++seq), { msgID });
        expect(ack.duplicate).toBe(false);
      }
    }

    // And garbage on its own subject: the hub dead-letters it (a publish its user may make).
    await js.publish(subj.readings(A), Buffer.from("not a batch"), { msgID: `${A}-garbage` });

    // 4. The honest gateway's readings.
    for (let i = 0; i < READINGS; i++)
      await publisher.publishAsync(`${id}/sensors/s${i % 7}`, `{"name":"b-sensor-${i % 7}","value":${i}}`, { qos: 1 });
    let got = { n: 0, seqs: 0 };
    await waitFor(
      async () => (got = await rows(B)).n >= READINGS,
      `${READINGS} readings of B in Postgres`,
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; got ${JSON.stringify(got)}; gateway: ${JSON.stringify(honest.status())}`);
    });
    await waitFor(() => honest.status().outbox.readings === 0, "B's outbox to empty");
    expect(await rows(B)).toEqual({ n: READINGS, seqs: READINGS });
    const values = await db.pool.query<{ v: number }>(
      "SELECT value AS v FROM readings WHERE gateway_id = $1 ORDER BY value",
      [B],
    );
    expect(values.rows.map((r) => r.v)).toEqual(Array.from({ length: READINGS }, (_, i) => i));
    // No batch of B was answered "duplicate", and B's uplink met no refusal under the set.
    expect(await metricValue(honest.metrics.registry, "datalab_gateway_duplicate_batches_total")).toBe(0);
    expect(await metricValue(honest.metrics.registry, "datalab_gateway_uplink_errors_total")).toBe(0);
    expect(honest.status().uplink?.problem).toBeUndefined();
    // The hub took A's batches as A's, beside B's (its own subject, its own key).
    let ofA = 0;
    await waitFor(
      async () => (ofA = (await rows(A)).n) === seq,
      `the hostile gateway's ${seq} batches stored as its own`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stored: ${ofA}`);
    });
    // B's reports reached the hub (the set lets B publish them, and the hub read them).
    await waitFor(async () => {
      const r = await db.pool.query(
        "SELECT 1 FROM gateways WHERE gateway_id = $1 AND reported_at IS NOT NULL AND health_detail->>'instance' = $2",
        [B, instance],
      );
      return r.rowCount === 1;
    }, "B's health report to reach the hub");

    // The hub's user can do all the hub does: every batch acked (an ack the set refused would
    // leave it pending, then redelivered), A's garbage dead-lettered, and `hub status` and
    // `hub dead-letters list/replay` work with these credentials.
    const asHub = await connect({ servers: nats.url, user: "hub", pass: PASSWORDS.DATALAB_NATS_HUB_PASSWORD });
    try {
      const st = await waitFor(async () => {
        const r = await hubStatus(asHub, subj, ["postgres"], undefined);
        return r.consumers[0]?.lag === 0 && r.deadLetters.total === 1 ? r : undefined;
      }, "the hub's consumer to have acked everything, and A's garbage to be dead-lettered");
      expect(st.consumers[0]).toMatchObject({ sink: "postgres", exists: true, ackPending: 0, redelivered: 0 });
      // `hub dead-letters replay` too: the letter goes back on A's subject (and, still garbage,
      // comes back to the dead letters).
      const letters = await listDeadLetters(asHub, subj);
      expect(letters.map((l) => l.subject)).toEqual([subj.readings(A)]);
      expect(await replayDeadLetters(asHub, subj, letters)).toMatchObject([{ ok: true }]);
      await waitFor(
        async () => (await listDeadLetters(asHub, subj)).some((l) => l.seq !== letters[0]!.seq),
        "the replayed garbage to be dead-lettered again",
      );
    } finally {
      await asHub.close();
    }

    // The hostile gateway received nothing of B's: not a batch, not a PubAck, not a report.
    expect(received.map((m) => m.subject)).toEqual([]);
  });

  // Past the uplink: the hub folds copies of one sensor's measurement whoever sent them. Only
  // copies that agree on the value fold, so a claim made first with another value is kept
  // beside the honest reading and cannot replace it.
  it("cannot replace a reading of the honest gateway's sensor by claiming its measurement first", async () => {
    const sensor = `victim-${id}`;
    const ts = Date.UTC(2026, 0, 1, 12);
    const now = Date.now();
    const forged: Batch = {
      v: BATCH_FORMAT_VERSION,
      gatewayId: A,
      instance: "hostile",
      firstSeq: 100_000,
      lastSeq: 100_000,
      sentAt: now,
      messages: [
        {
          source: "mqtt:hostile",
          receivedAt: now,
          payload: "{}",
          encoding: "utf8",
          readings: [{ seq: 100_000, sensorId: sensor, metric: "temperature", value: 999, unit: "Cel", ts }],
        },
      ],
    };
    await jetstream(hostile).publish(subj.readings(A), encodeBatch(forged), { msgID: `${A}-claim-${id}` });
    await waitFor(
      async () => (await db.pool.query("SELECT 1 FROM readings WHERE sensor_id = $1", [sensor])).rowCount === 1,
      "the forged claim to be stored",
    );

    const forwarded = await metricValue(honest.metrics.registry, "datalab_gateway_forwarded_readings_total");
    await publisher.publishAsync(`${id}/sensors/victim`, JSON.stringify({ sensor, temperature: 21.5, ts: ts / 1000 }), {
      qos: 1,
    });
    await waitFor(
      async () =>
        (await metricValue(honest.metrics.registry, "datalab_gateway_forwarded_readings_total")) === forwarded + 1,
      "B to forward its reading",
    );
    const asHub = await connect({ servers: nats.url, user: "hub", pass: PASSWORDS.DATALAB_NATS_HUB_PASSWORD });
    try {
      await waitFor(
        async () => (await hubStatus(asHub, subj, ["postgres"], undefined)).consumers[0]?.lag === 0,
        "the hub to write B's batch",
      );
    } finally {
      await asHub.close();
    }
    const stored = await db.pool.query<{ value: number }>(
      "SELECT value FROM readings WHERE sensor_id = $1 AND gateway_id = $2",
      [sensor, B],
    );
    expect(stored.rows.map((r) => r.value)).toEqual([21.5]);
  });
});
