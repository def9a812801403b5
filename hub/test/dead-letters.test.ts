import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { metricValue, silentLogger } from "@datalab/shared";
import { NATS_URL, runCommand, waitFor, type TestDatabase } from "@datalab/shared/testing";
import { testDatabase } from "./support/db";
import { listDeadLetters } from "../src/consume/dead-letters";
import { Hub } from "../src/hub";
import { createHubMetrics } from "../src/consume/metrics";
import { makeBatch, makeBatches, publishBatches, totalReadings } from "./support/batches";
import { configEnv, testConfig } from "./support/config";
import { cleanEnv, HUB_CLI } from "./support/processes";
import type { HubConfig } from "../src/config";

/**
 * Poison batches: what cannot be decoded goes to the dead letters on its first delivery
 * (decoding is deterministic: retrying cannot help); what the sink refuses goes there after
 * DATALAB_MAX_DELIVER refusals. Neither holds back the batches behind it. Then the operator's
 * side: `pnpm hub status`, `pnpm hub dead-letters`, and `--replay` once the cause is fixed.
 */
describe("dead letters", () => {
  let db: TestDatabase;
  let config: HubConfig;
  let hub: Hub;
  let nc: NatsConnection;
  const metrics = createHubMetrics(false);
  const gw = "gwdl";
  const readingsIn = async () =>
    Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n);
  const dl = (reason: string) =>
    metricValue(metrics.registry, "datalab_hub_dead_letters_total", { sink: "postgres", reason });
  const cli = (...args: string[]) =>
    runCommand(process.execPath, ["--import", "tsx", HUB_CLI, ...args], {
      env: cleanEnv(configEnv(config)),
      timeoutMs: 30_000,
    });

  beforeAll(async () => {
    db = await testDatabase();
    // One write at a time: a consumer that retried a refused batch inline would visibly block.
    config = testConfig({
      DATALAB_PG_URL: db.url,
      DATALAB_MAX_DELIVER: "4",
      DATALAB_SINK_CONCURRENCY: "1",
      DATALAB_ACK_WAIT_MS: "5000",
    });
    hub = new Hub(config, { logger: silentLogger(), metrics });
    await hub.start();
    // A rule the operator will later decide was wrong: the sink refuses such readings.
    await db.pool.query("ALTER TABLE readings ADD CONSTRAINT value_sane CHECK (value > -1000)");
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

  it(
    "an undecodable batch and one claiming another gateway are dead-lettered at once; " +
      "the batches behind them land",
    async () => {
      const s = hub.subjects;
      const [good1, ...rest] = makeBatches(gw, "i1", 5, 10);
      await publishBatches(nc, s, [good1!]);
      await nc.publish(s.readings(gw), new TextEncoder().encode("{not json"));
      const impostor = makeBatch({ gatewayId: "someone-else", instance: "i9", firstSeq: 1, messages: 2 });
      await publishBatches(nc, s, [impostor], { subject: s.readings(gw) });
      await publishBatches(nc, s, rest);
      const good = totalReadings([good1!, ...rest]);
      await waitFor(async () => (await readingsIn()) === good, "the good batches in Postgres");
      await waitFor(
        async () => (await dl("not_json")) === 1 && (await dl("gateway_mismatch")) === 1,
        "two dead letters",
      );
      const letters = await listDeadLetters(nc, s, { sink: "postgres" });
      expect(letters.map((d) => d.reason)).toEqual(["not_json", "gateway_mismatch"]);
      expect(letters[0]).toMatchObject({ sink: "postgres", subject: s.readings(gw), size: 9, attempts: 1 });
      expect(letters[1]!.error).toMatch(/claims gateway "someone-else"/);
      // Nothing of the impostor's reached the table.
      expect(Number((await db.pool.query("SELECT count(*) AS n FROM readings WHERE instance = 'i9'")).rows[0].n)).toBe(
        0,
      );
    },
  );

  it(
    "a batch the sink refuses is retried with backoff " +
      "and dead-lettered after DATALAB_MAX_DELIVER refusals, without blocking",
    async () => {
      const s = hub.subjects;
      const before = await readingsIn();
      const refused = makeBatch({ gatewayId: gw, instance: "i2", firstSeq: 1, messages: 3, metricsPerMessage: 1 });
      for (const m of refused.batch.messages) for (const r of m.readings) r.value = -5000;
      const refusedData = { ...refused, data: new TextEncoder().encode(JSON.stringify(refused.batch)) };
      const behind = makeBatches(gw, "i3", 5, 10);
      await publishBatches(nc, s, [refusedData, ...behind]);
      await waitFor(
        async () => (await readingsIn()) === before + totalReadings(behind),
        "the batches behind the refused one",
      );
      // With retries 0.5 s, 1 s, 2 s apart, the refused batch is still being retried now:
      // the ones behind it did not wait for it.
      expect(await dl("sink_rejected")).toBe(0);
      await waitFor(async () => (await dl("sink_rejected")) === 1, "the refused batch dead-lettered");
      const [letter] = await listDeadLetters(nc, s, { reason: "sink_rejected" });
      expect(letter).toMatchObject({ sink: "postgres", attempts: 4, subject: s.readings(gw), msgId: refused.msgId });
      expect(letter!.error).toMatch(/value_sane/);
      expect(
        await metricValue(metrics.registry, "datalab_hub_write_errors_total", { sink: "postgres", kind: "rejected" }),
      ).toBe(4);
      expect(
        await metricValue(metrics.registry, "datalab_hub_write_errors_total", {
          sink: "postgres",
          kind: "unavailable",
        }),
      ).toBe(0);
      // Acked or terminated: nothing of it stays pending (on 2.9 a "+TERM reason" would have).
      await waitFor(async () => {
        const ci = await (await jetstreamManager(nc)).consumers.info(s.stream, "postgres-sink");
        return ci.num_ack_pending === 0 && ci.num_pending === 0;
      }, "consumer fully acked");
    },
  );

  it(
    "pnpm hub status and dead-letters report it; " + "--replay after the fix writes the batch and removes the letter",
    async () => {
      const s = hub.subjects;
      const status = await cli("status", "--json");
      expect(status.code, status.stderr).toBe(0);
      const report = JSON.parse(status.stdout);
      expect(report.consumers).toEqual([expect.objectContaining({ sink: "postgres", exists: true, lag: 0 })]);
      expect(report.deadLetters).toEqual({ total: 3, bySink: { postgres: 3 } });
      expect(report.postgres.reachable).toBe(true);
      expect(Date.now() - Date.parse(report.postgres.lastWriteAt)).toBeLessThan(60_000);
      expect(report.postgres.gateways[0]).toMatchObject({ gatewayId: gw });

      const list = await cli("dead-letters");
      expect(list.code, list.stderr).toBe(0);
      for (const reason of ["not_json", "gateway_mismatch", "sink_rejected"]) expect(list.stdout).toContain(reason);
      expect(list.stdout).toContain(s.readings(gw));

      await db.pool.query("ALTER TABLE readings DROP CONSTRAINT value_sane");
      const before = await readingsIn();
      const replay = await cli("dead-letters", "--replay", "--reason", "sink_rejected");
      expect(replay.code, replay.stderr + replay.stdout).toBe(0);
      expect(replay.stdout).toContain("1 replayed, 0 failed");
      await waitFor(async () => (await readingsIn()) === before + 3, "the replayed batch in Postgres");
      expect(Number((await db.pool.query("SELECT count(*) AS n FROM readings WHERE value = -5000")).rows[0].n)).toBe(3);
      // The letter is gone, the two undecodable ones stay.
      expect((await listDeadLetters(nc, s)).map((d) => d.reason)).toEqual(["not_json", "gateway_mismatch"]);
      // It went back under a new Nats-Msg-Id: the original one would have been dropped as a
      // duplicate inside the stream's duplicate window.
      const last = await (await jetstreamManager(nc)).streams.getMessage(s.stream, { last_by_subj: s.readings(gw) });
      expect(last?.header.get("Nats-Msg-Id")).toMatch(/:replay:\d+$/);
    },
  );
});
