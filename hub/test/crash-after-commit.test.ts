import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjects } from "@datalab/shared";
import { MONGO_URL, NATS_URL, uniqueId, waitFor, type TestDatabase } from "@datalab/shared/testing";
import { MongoClient } from "mongodb";
import { makeBatches, publishBatches, type TestBatch } from "./support/batches";
import { configEnv, testConfig } from "./support/config";
import { count, testDatabase } from "./support/db";
import { spawnTs, startHubProcess } from "./support/processes";
import type { HubConfig } from "../src/config";

const CRASHER = new URL("./support/crash-after-commit.ts", import.meta.url).pathname;

/**
 * A hub process SIGKILLed between its sink's commit and its ack. JetStream redelivers the
 * batch (ack_wait 1 s here) to the next hub, whose write finds everything already there:
 * no second row, no second document.
 */
async function crashBetweenCommitAndAck(
  sink: "postgres" | "mongo",
  config: HubConfig,
  batches: TestBatch[],
  stored: () => Promise<number>,
  unitsPerBatch: number,
) {
  const nc: NatsConnection = await connect({ servers: NATS_URL });
  const subj = subjects(config.natsPrefix);
  try {
    // One write at a time, so exactly one batch is committed and not acked when it dies.
    const env = configEnv({ ...config, sinkConcurrency: 1, ackWaitMs: 1_000 });
    const crasher = spawnTs(CRASHER, [sink, "3"], env);
    await waitFor(
      () => crasher.log().includes("READY") || crasher.proc.exitCode !== null,
      "crashing hub to start",
      30_000,
    );
    await publishBatches(nc, subj, batches);
    await crasher.exited;
    expect(crasher.proc.signalCode).toBe("SIGKILL");
    expect(crasher.log()).toContain("CRASH committed stream seq 3");
    // Three batches committed; the third never acked.
    expect(await stored()).toBe(3 * unitsPerBatch);
    const ci = await (await jetstreamManager(nc)).consumers.info(subj.stream, `${sink}-sink`);
    expect(ci.ack_floor.stream_seq).toBe(2);

    const hub = await startHubProcess(configEnv({ ...config, ackWaitMs: 1_000 }), 1);
    try {
      await waitFor(
        async () => (await stored()) === batches.length * unitsPerBatch,
        `every batch in ${sink}`,
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${hub.log().slice(-3000)}`);
      });
      await waitFor(
        async () => (await hub.metric("datalab_hub_duplicates_total", { sink })) > 0,
        "the redelivered batch seen as duplicates",
      );
      // The committed-but-unacked batch came back as duplicates. On a busy machine a batch
      // can also wait past the 1 s ack_wait in the client's buffer and come back: more whole
      // batches of duplicates, never a second row.
      const dups = await hub.metric("datalab_hub_duplicates_total", { sink });
      expect(dups).toBeGreaterThanOrEqual(unitsPerBatch);
      expect(dups % unitsPerBatch).toBe(0);
      expect(await stored()).toBe(batches.length * unitsPerBatch);
    } finally {
      await hub.kill("SIGTERM");
    }
    expect(await hub.exited).toBe(0);
  } finally {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(subj.stream).catch(() => undefined);
    await jsm.streams.delete(subj.deadLetterStream).catch(() => undefined);
    await nc.close();
  }
}

describe("a hub killed between commit and ack", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await testDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("PostgreSQL: after the redelivery, no duplicate row", async () => {
    const config = testConfig({ DATALAB_PG_URL: db.url });
    const batches = makeBatches("gwcrash", uniqueId("i"), 8, 20); // 40 readings each
    await crashBetweenCommitAndAck("postgres", config, batches, () => count(db), 40);
    expect(await count(db, "SELECT count(DISTINCT (gateway_id, instance, seq)) AS n FROM readings")).toBe(8 * 40);
  });
});

describe.skipIf(!MONGO_URL)("a hub killed between commit and ack, MongoDB (needs DATALAB_MONGO_URL)", () => {
  const dbName = uniqueId("dl_");
  let client: MongoClient;
  beforeAll(async () => {
    client = new MongoClient(MONGO_URL!);
  });
  afterAll(async () => {
    await client
      ?.db(dbName)
      .dropDatabase()
      .catch(() => undefined);
    await client?.close();
  });

  it("MongoDB: after the redelivery, no duplicate document", async () => {
    const config = testConfig({ DATALAB_PG_ENABLED: "false", DATALAB_MONGO_URL: MONGO_URL, DATALAB_MONGO_DB: dbName });
    const batches = makeBatches("gwcrash", uniqueId("i"), 8, 20); // 20 messages each
    const messages = client.db(dbName).collection("messages");
    await crashBetweenCommitAndAck("mongo", config, batches, () => messages.countDocuments(), 20);
  });
});
