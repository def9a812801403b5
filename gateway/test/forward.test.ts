import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsConnectionOptions, silentLogger, subjects, type Subjects } from "@datalab/shared";
import { NATS_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { Forwarder, type ForwardOptions } from "../src/forward/forwarder";
import { createGatewayMetrics } from "../src/metrics";
import { NatsUplink } from "../src/uplink/nats";
import type { Uplink } from "../src/uplink/types";
import { messages, openTestOutbox, type TestOutbox } from "./support/outbox";
import { countReadings, deleteStream, doubled, natsAdmin, readBatches } from "./support/stream";
import { DiesAfterFirstAck } from "./support/uplink";

let admin: { nc: NatsConnection; jsm: JetStreamManager };
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  admin = await natsAdmin(NATS_URL);
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await admin.nc.close();
});

function world(): { gw: string; subj: Subjects; t: TestOutbox; uplink: NatsUplink } {
  const gw = uniqueId("fw");
  const subj = subjects(gw);
  // One message per row: these tests count readings per batch exactly.
  const t = openTestOutbox({ rowMaxReadings: 1 });
  const uplink = new NatsUplink({
    connection: natsConnectionOptions([NATS_URL], {}, gw),
    subjects: subj,
    ensureStream: true,
    logger: silentLogger(),
  });
  cleanup.push(async () => {
    await uplink.close();
    try {
      t.outbox.close();
    } catch {
      // closed by the test
    }
    rmSync(t.dir, { recursive: true, force: true });
    await deleteStream(admin.jsm, subj.stream);
  });
  return { gw, subj, t, uplink };
}

function forwarder(
  t: TestOutbox,
  uplink: Uplink,
  gw: string,
  subj: Subjects,
  o: Partial<ForwardOptions> = {},
): Forwarder {
  const opts: ForwardOptions = {
    maxReadings: 20,
    maxBytes: 512 * 1024,
    maxAgeMs: 0,
    maxReadingsPerSec: 0,
    maxBytesPerSec: 0,
    ...o,
  };
  return new Forwarder(t.outbox, uplink, subj.readings(gw), gw, opts, createGatewayMetrics(false), silentLogger());
}

describe("forwarder: crash between PubAck and delete", () => {
  it("resends exactly the recorded batch, same Nats-Msg-Id, after a restart: the stream keeps one copy", async () => {
    const { gw, subj, t, uplink } = world();
    t.outbox.commit(messages(1, 50));
    const dying = new DiesAfterFirstAck(uplink);
    const first = forwarder(t, dying, gw, subj, { maxReadings: 20 });
    first.start();
    await waitFor(() => dying.acked === 1, "the first batch to be acknowledged");
    const recorded = t.outbox.inflight();
    expect(recorded).toMatchObject({ firstSeq: 1, lastSeq: 20 });
    // The crash: the rows are still there, the batch is in the stream.
    expect(t.outbox.stats().readings).toBe(50);

    // Restart with other batch settings and more rows: the recorded boundaries still win.
    const outbox = t.reopen();
    outbox.commit(messages(51, 10));
    const second = forwarder(t, uplink, gw, subj, { maxReadings: 7 });
    second.start();
    await waitFor(() => outbox.stats().readings === 0, "the outbox to drain");
    await second.stop();

    const batches = await readBatches(admin.jsm, subj.stream);
    const ids = batches.map((b) => b.msgId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(batches[0]!.batch).toMatchObject({ firstSeq: 1, lastSeq: 20 });
    // 1..20 once (the resend was dropped as a duplicate), then batches of 7.
    expect(batches.slice(1).every((b) => b.batch.lastSeq - b.batch.firstSeq + 1 <= 7)).toBe(true);
    const c = countReadings(batches);
    expect(doubled(c)).toEqual([]);
    expect(c.readings).toBe(60);
    expect(outbox.inflight()).toBeUndefined();
  });
});

describe("forwarder: draining a backlog", () => {
  it("drains the backlog in order while live readings still go out (a capped uplink)", async () => {
    const { gw, subj, t, uplink } = world();
    // A backlog of 3,000 readings, an uplink capped at 1,000 readings/s: about 3 s of drain.
    t.outbox.commit(messages(1, 3_000));
    const f = forwarder(t, uplink, gw, subj, { maxReadings: 500, maxReadingsPerSec: 1_000, maxAgeMs: 50 });
    f.start();
    await waitFor(() => t.outbox.stats().readings < 3_000, "the drain to start");
    expect(f.state()).toBe("draining");
    // Live readings arrive in the middle of the drain.
    const live = messages(100_001, 5).map((m) => ({ ...m, receivedAt: Date.now() }));
    t.outbox.commit(live);
    f.notify();
    let backlogLeftWhenLiveSent = -1;
    await waitFor(
      async () => {
        const c = countReadings(await readBatches(admin.jsm, subj.stream));
        if (c.values.has(100_001))
          backlogLeftWhenLiveSent = 3_000 - [...c.values.keys()].filter((v) => v <= 3_000).length;
        return backlogLeftWhenLiveSent >= 0;
      },
      "the live readings to reach the stream",
      10_000,
    );
    // They did not wait for the backlog to finish.
    expect(backlogLeftWhenLiveSent).toBeGreaterThan(0);
    await waitFor(() => t.outbox.stats().readings === 0, "the backlog to drain", 15_000);
    await f.stop();
    const batches = await readBatches(admin.jsm, subj.stream);
    const backlog = batches.filter((b) => b.batch.firstSeq <= 3_000).map((b) => b.batch.firstSeq);
    expect(backlog).toEqual([...backlog].sort((a, b) => a - b));
    // The cap shrinks batches to one second's worth.
    expect(batches.every((b) => b.batch.lastSeq - b.batch.firstSeq < 1_000)).toBe(true);
    const c = countReadings(batches);
    expect(doubled(c)).toEqual([]);
    expect(c.readings).toBe(3_005);
  });
});
