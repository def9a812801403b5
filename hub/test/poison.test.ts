import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { batchMsgId, encodeBatch, metricValue, silentLogger, subjects, type Batch } from "@datalab/shared";
import { NATS_URL, uniqueId, waitFor, type TestDatabase } from "@datalab/shared/testing";
import { testDatabase } from "./support/db";
import { listDeadLetters, replayDeadLetters } from "../src/consume/dead-letters";
import { DirectIntake, type DirectDeadLetter } from "../src/consume/direct";
import { createPostgresSink } from "../src/sinks/index";
import { Hub } from "../src/hub";
import { createHubMetrics } from "../src/consume/metrics";
import { makeBatch, publishBatches, type TestBatch } from "./support/batches";
import { testConfig } from "./support/config";
import type { HubConfig } from "../src/config";

/**
 * One bad message costs only itself: a batch holding one poison message (each class the hub
 * or Postgres refused) lands all its other readings, and the poison is dead-lettered alone,
 * with its reason, in a letter that replays by itself.
 */
describe("a poison message in a batch", () => {
  let db: TestDatabase;
  let config: HubConfig;
  let hub: Hub;
  let nc: NatsConnection;
  const metrics = createHubMetrics(false);
  const gw = "gwpoison";
  const count = async (where: string, params: unknown[] = []) =>
    Number(
      (
        await db.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM readings WHERE gateway_id = '${gw}' AND ${where}`,
          params,
        )
      ).rows[0]!.n,
    );
  const dl = (reason: string) =>
    metricValue(metrics.registry, "datalab_hub_dead_letters_total", { sink: "postgres", reason });

  beforeAll(async () => {
    db = await testDatabase();
    config = testConfig({ DATALAB_PG_URL: db.url, DATALAB_MAX_DELIVER: "3", DATALAB_ACK_WAIT_MS: "5000" });
    hub = new Hub(config, { logger: silentLogger(), metrics });
    await hub.start();
    nc = await connect({ servers: NATS_URL });
  });

  afterAll(async () => {
    await hub?.stop();
    if (nc) {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(hub.subjects.stream).catch(() => undefined);
      await jsm.streams.delete(hub.subjects.deadLetterStream).catch(() => undefined);
      await nc.close();
    }
    await db?.drop();
  });

  /** 20 messages of 2 readings; message 7 is made poisonous by `poison`. */
  function withPoison(instance: string, poison: (m: Batch["messages"][number]) => void, v: Batch["v"] = 1): TestBatch {
    const b = makeBatch({ gatewayId: gw, instance, firstSeq: 1, messages: 20 });
    b.batch.v = v;
    poison(b.batch.messages[7]!);
    return { ...b, data: encodeBatch(b.batch), msgId: batchMsgId(b.batch) };
  }

  // What the gateway admitted before the shared contract, and the hub (or Postgres) refused.
  const classes: [string, string, (m: Batch["messages"][number]) => void][] = [
    [
      "a source over 512 characters (a long MQTT topic)",
      "bad_source",
      (m) => void (m.source = `mqtt:${"t".repeat(600)}`),
    ],
    ["a metric holding a lone surrogate", "bad_metric", (m) => void (m.readings[0]!.metric = "\udc00")],
    ["a unit holding a lone surrogate", "bad_unit", (m) => void (m.readings[1]!.unit = "V\ud800")],
    ["a unit holding NUL", "bad_unit", (m) => void (m.readings[0]!.unit = "\u0000")],
    ["a sensor id holding a lone surrogate", "bad_sensor_id", (m) => void (m.readings[0]!.sensorId = "s\udc00")],
    ["a control character in the source", "bad_source", (m) => void (m.source = "mqtt:a\u0007b")],
    ["the largest double as a value", "bad_value", (m) => void (m.readings[0]!.value = 1.7976931348623157e308)],
  ];

  it.each(classes.map(([what, reason, f], i) => [what, reason, f, `i${i}`] as const))(
    "%s: the other 19 messages land, the poison is dead-lettered alone as %s",
    async (_what, reason, poison, instance) => {
      const before = await dl(reason);
      await publishBatches(nc, hub.subjects, [withPoison(instance, poison)]);
      await waitFor(async () => (await dl(reason)) === before + 1, `the poison dead-lettered as ${reason}`);
      await waitFor(async () => (await count("instance = $1", [instance])) === 38, "the 38 other readings in Postgres");
      // Not a reading of message 7 (seqs 15 and 16) was stored.
      expect(await count("instance = $1 AND seq IN (15, 16)", [instance])).toBe(0);
      const letters = (await listDeadLetters(nc, hub.subjects, { sink: "postgres" })).filter(
        (d) => JSON.parse(Buffer.from(d.data).toString("utf8")).instance === instance,
      );
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ reason, message: 7, attempts: 1 });
      expect(letters[0]!.error).toMatch(/^message 7: /);
      const alone = JSON.parse(Buffer.from(letters[0]!.data).toString("utf8")) as Batch;
      expect(alone.messages).toHaveLength(1);
      expect([alone.firstSeq, alone.lastSeq]).toEqual([15, 16]);
    },
  );

  it.each([1, 2] as const)(
    "a message Postgres refuses is found by halving the batch (wire format %i): the rest land at once, " +
      "the poison is dead-lettered alone after DATALAB_MAX_DELIVER refusals, " +
      "and its replay after the fix lands it",
    async (v) => {
      // A rule the sink enforces and the contract does not know: what a database may refuse.
      // NOT VALID: the other format's run replayed a reading this refuses.
      await db.pool.query("ALTER TABLE readings ADD CONSTRAINT value_sane CHECK (value > -1000) NOT VALID");
      const instance = `isink${v}`;
      const before = await dl("sink_rejected");
      const b = withPoison(instance, (m) => void (m.readings[1]!.value = -5000), v);
      await publishBatches(nc, hub.subjects, [b]);
      await waitFor(async () => (await count("instance = $1", [instance])) === 38, "the 38 other readings in Postgres");
      await waitFor(
        async () => (await dl("sink_rejected")) === before + 1,
        "the poison dead-lettered after its refusals",
      );
      const letter = (await listDeadLetters(nc, hub.subjects, { sink: "postgres", reason: "sink_rejected" })).find(
        (d) => JSON.parse(Buffer.from(d.data).toString("utf8")).instance === instance,
      );
      expect(letter).toMatchObject({ message: 7, attempts: 3, msgId: b.msgId });
      expect(letter!.error).toMatch(/value_sane/);
      // As the hub decoded it, in format 1 (every hub reads it), whatever format it came in.
      const alone = JSON.parse(Buffer.from(letter!.data).toString("utf8")) as Batch;
      expect(alone.v).toBe(1);
      expect(alone.messages.map((m) => m.readings.map((r) => r.seq))).toEqual([[15, 16]]);
      await waitFor(async () => {
        const ci = await (await jetstreamManager(nc)).consumers.info(hub.subjects.stream, "postgres-sink");
        return ci.num_ack_pending === 0 && ci.num_pending === 0;
      }, "the batch acked");

      await db.pool.query("ALTER TABLE readings DROP CONSTRAINT value_sane");
      const results = await replayDeadLetters(nc, hub.subjects, [letter!]);
      expect(results).toEqual([expect.objectContaining({ ok: true })]);
      await waitFor(async () => (await count("instance = $1", [instance])) === 40, "the replayed message in Postgres");
      expect(await count("instance = $1 AND value = -5000", [instance])).toBe(1);
      expect(await dl("sink_rejected")).toBe(before + 1);
    },
  );

  it("a replayed poison still invalid comes back to the dead letters alone, and nothing else moves", async () => {
    const [letter] = await listDeadLetters(nc, hub.subjects, { sink: "postgres", reason: "bad_metric" });
    const before = await dl("bad_metric");
    const rows = await count("true");
    expect(await replayDeadLetters(nc, hub.subjects, [letter!])).toEqual([expect.objectContaining({ ok: true })]);
    await waitFor(async () => (await dl("bad_metric")) === before + 1, "the replay dead-lettered again");
    const again = await listDeadLetters(nc, hub.subjects, { sink: "postgres", reason: "bad_metric" });
    expect(again).toHaveLength(1);
    expect(again[0]!.message).toBe(0);
    expect(await count("true")).toBe(rows);
  });

  it(
    "a batch with one message the contract refuses and one the sink refuses: 36 readings land, " +
      "each poison is dead-lettered alone with its own reason and attempts",
    async () => {
      await db.pool.query("ALTER TABLE readings ADD CONSTRAINT value_sane2 CHECK (value > -1000) NOT VALID");
      try {
        const [sinkBefore, unitBefore] = [await dl("sink_rejected"), await dl("bad_unit")];
        const b = makeBatch({ gatewayId: gw, instance: "imixed", firstSeq: 1, messages: 20 });
        b.batch.messages[2]!.readings[0]!.unit = "\u0000";
        b.batch.messages[17]!.readings[1]!.value = -5000;
        await publishBatches(nc, hub.subjects, [{ ...b, data: encodeBatch(b.batch), msgId: batchMsgId(b.batch) }]);
        await waitFor(async () => (await count("instance = 'imixed'")) === 36, "the 36 other readings in Postgres");
        await waitFor(
          async () => (await dl("sink_rejected")) === sinkBefore + 1 && (await dl("bad_unit")) === unitBefore + 1,
          "both poisons dead-lettered",
        );
        const letters = (await listDeadLetters(nc, hub.subjects, { sink: "postgres" })).filter(
          (d) => JSON.parse(Buffer.from(d.data).toString("utf8")).instance === "imixed",
        );
        expect(letters.map((d) => [d.reason, d.message, d.attempts]).sort()).toEqual([
          ["bad_unit", 2, 1],
          ["sink_rejected", 17, 3],
        ]);
      } finally {
        await db.pool.query("ALTER TABLE readings DROP CONSTRAINT value_sane2");
      }
    },
  );
});

describe("a poison message in a batch handed over in-process (the demo's direct intake)", () => {
  let db: TestDatabase;
  const gw = "gwdirect";
  const dead: DirectDeadLetter[] = [];
  let intake: DirectIntake;
  const count = async (where: string) =>
    Number(
      (await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM readings WHERE gateway_id = '${gw}' AND ${where}`))
        .rows[0]!.n,
    );
  const subj = subjects(uniqueId("direct"));

  beforeAll(async () => {
    db = await testDatabase();
    const sink = await createPostgresSink(db.pool, silentLogger());
    await db.pool.query("ALTER TABLE readings ADD CONSTRAINT value_sane CHECK (value > -1000)");
    intake = new DirectIntake(
      [sink],
      subj,
      { limits: { maxBytes: 1 << 20, maxMessages: 1_000 }, maxDeliver: 2, deadLetter: async (d) => void dead.push(d) },
      createHubMetrics(false),
      silentLogger(),
    );
  });

  afterAll(async () => {
    await db?.drop();
  });

  it("lands the other messages and dead-letters each poison alone, with its reason and position", async () => {
    const b = makeBatch({ gatewayId: gw, instance: "d1", firstSeq: 1, messages: 20 });
    b.batch.messages[3]!.readings[0]!.unit = "\u0000";
    b.batch.messages[12]!.readings[1]!.value = -5000;
    const data = encodeBatch(b.batch);
    const msgId = batchMsgId(b.batch);
    // The sink's refusal counts once per delivery: the first fails the publish (the gateway keeps
    // the batch), the second isolates it.
    await expect(intake.deliver(subj.readings(gw), data, msgId)).rejects.toThrow(/value_sane/);
    await expect(intake.deliver(subj.readings(gw), data, msgId)).resolves.toMatchObject({ duplicate: false });
    expect(await count("true")).toBe(36);
    expect(await count("seq IN (7, 8, 25, 26)")).toBe(0);
    expect(dead.map((d) => [d.reason, d.message, d.msgId])).toEqual([
      ["sink_rejected", 12, `${msgId}:m12`],
      ["bad_unit", 3, `${msgId}:m3`],
    ]);
    for (const d of dead) expect((JSON.parse(Buffer.from(d.data).toString("utf8")) as Batch).messages).toHaveLength(1);
  });

  it("does the same for a batch in wire format 2; the sink's refusal is dead-lettered in format 1", async () => {
    const b = makeBatch({ gatewayId: gw, instance: "d2", firstSeq: 1, messages: 20 });
    b.batch.v = 2;
    b.batch.messages[3]!.readings[0]!.unit = "\u0000";
    b.batch.messages[12]!.readings[1]!.value = -5000;
    const data = encodeBatch(b.batch);
    const msgId = batchMsgId(b.batch);
    const from = dead.length;
    await expect(intake.deliver(subj.readings(gw), data, msgId)).rejects.toThrow(/value_sane/);
    await expect(intake.deliver(subj.readings(gw), data, msgId)).resolves.toMatchObject({ duplicate: false });
    expect(await count("instance = 'd2'")).toBe(36);
    const letters = dead.slice(from).map((d) => [d.reason, JSON.parse(Buffer.from(d.data).toString("utf8"))]);
    expect(letters.map(([reason, l]) => [reason, l.v, Array.isArray(l.messages[0])])).toEqual([
      ["sink_rejected", 1, false],
      ["bad_unit", 2, true],
    ]);
  });
});
