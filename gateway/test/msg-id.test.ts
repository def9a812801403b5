import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  metricValue,
  natsConnectionOptions,
  silentLogger,
  subjects,
  type Logger,
  type Subjects,
} from "@datalab/shared";
import { NATS_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { batchDigest, Batcher, encodeBatch } from "../src/forward/batcher";
import type { OutboxRow } from "../src/outbox/store";
import { Forwarder, type ForwardOptions } from "../src/forward/forwarder";
import { createGatewayMetrics, type GatewayMetrics } from "../src/metrics";
import { NatsUplink } from "../src/uplink/nats";
import type { Uplink } from "../src/uplink/types";
import { messages, openTestOutbox, type TestOutbox } from "./support/outbox";
import { deleteStream, natsAdmin, readBatches } from "./support/stream";
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

function outbox(): TestOutbox {
  const t = openTestOutbox({ rowMaxReadings: 1 });
  cleanup.push(() => {
    try {
      t.outbox.close();
    } catch {
      // closed by the test
    }
    rmSync(t.dir, { recursive: true, force: true });
  });
  return t;
}

const batchOpts = { maxReadings: 10, maxBytes: 512 * 1024, maxAgeMs: 0 };

describe("Nats-Msg-Id: gateway id, instance, seq range and a keyed digest of the messages", () => {
  it("is the same for a resend of the same rows (sentAt differs), after a restart too", () => {
    const t = outbox();
    t.outbox.commit(messages(1, 10));
    let clock = 1_000;
    const b1 = new Batcher(t.outbox, "gw-x", batchOpts, silentLogger(), () => clock).next(undefined, true)!;
    clock = 99_000;
    const b2 = new Batcher(t.reopen(), "gw-x", batchOpts, silentLogger(), () => clock).next(undefined, true)!;
    expect(b2.data.equals(b1.data)).toBe(false);
    expect(b2.msgId).toBe(b1.msgId);
    expect(b1.msgId).toMatch(new RegExp(`^gw-x:${t.outbox.instance}:1-10:[A-Za-z0-9_-]{22}$`));
  });

  it(
    "cannot be predicted from the gateway id, instance, range and readings: " +
      "other bytes or another outbox's key give another id",
    () => {
      const a = outbox();
      const b = outbox();
      a.outbox.commit(messages(1, 10));
      b.outbox.commit(messages(1, 10));
      const idA = new Batcher(a.outbox, "gw-x", batchOpts, silentLogger(), () => 1).next(undefined, true)!.msgId;
      const idB = new Batcher(b.outbox, "gw-x", batchOpts, silentLogger(), () => 1).next(undefined, true)!.msgId;
      // Same readings, same range; the instances differ, and so do the digests (different keys).
      expect(idA.split(":").at(-1)).not.toBe(idB.split(":").at(-1));
      const c = outbox();
      c.outbox.commit(messages(2, 10));
      const idC = new Batcher(c.outbox, "gw-x", batchOpts, silentLogger(), () => 1).next(undefined, true)!.msgId;
      expect(idC.split(":").slice(2, 3)).toEqual(["1-10"]);
      expect(idC.split(":").at(-1)).not.toBe(idA.split(":").at(-1));
    },
  );
});

describe("a batch's bytes, written straight from its rows", () => {
  const row = (id: number, wire: string, wireBytes = Buffer.byteLength(wire)): OutboxRow => ({
    id,
    firstSeq: id,
    lastSeq: id,
    n: 1,
    m: 1,
    receivedAt: 1,
    wire,
    bytes: wireBytes,
    wireBytes,
  });
  const head = '{"v":1,"gatewayId":"gw-é","messages":[';
  const rows = [row(1, '{"payload":"a"}'), row(2, '{"payload":"°C ✓ 𝄞"}'), row(3, "{}")];
  const text = `${head}${rows.map((r) => r.wire).join(",")}]}`;
  const key = Buffer.alloc(32, 7);

  it("are the joined text's UTF-8, and the digest covers exactly the messages", () => {
    const { data, messages } = encodeBatch(head, rows);
    expect(data.toString("utf8")).toBe(text);
    expect(messages.toString("utf8")).toBe(rows.map((r) => r.wire).join(","));
    // The digest of the bytes is the digest of the text: ids stay what earlier releases sent.
    expect(batchDigest(key, "r", messages)).toBe(batchDigest(key, "r", rows.map((r) => r.wire).join(",")));
  });

  it("a row whose recorded size is wrong, shorter or longer, still gives the whole batch", () => {
    for (const delta of [-3, -1, 1, 2]) {
      const bad = [rows[0]!, row(2, rows[1]!.wire, Buffer.byteLength(rows[1]!.wire) + delta), rows[2]!];
      const { data, messages } = encodeBatch(head, bad);
      expect(data.toString("utf8")).toBe(text);
      expect(messages.toString("utf8")).toBe(rows.map((r) => r.wire).join(","));
    }
  });
});

type Line = { level: number; msg: string; msgId?: string };

/** A logger that keeps what the forwarder logs (info and up), as pino's levels. */
function capture(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: number) => (obj: object | string, msg?: string) =>
    void lines.push(typeof obj === "string" ? { level, msg: obj } : { ...(obj as object), level, msg: msg ?? "" });
  const logger = {
    debug: () => undefined,
    trace: () => undefined,
    info: at(30),
    warn: at(40),
    error: at(50),
    fatal: at(60),
  } as unknown as Logger;
  (logger as unknown as { child: () => Logger }).child = () => logger;
  return { logger, lines };
}

describe("a duplicate PubAck is checked, not believed", () => {
  function world(): { subj: Subjects; gw: string; uplink: NatsUplink; t: TestOutbox } {
    const gw = uniqueId("dup");
    const subj = subjects(gw);
    const uplink = new NatsUplink({
      connection: natsConnectionOptions([NATS_URL], {}, gw),
      subjects: subj,
      ensureStream: true,
      logger: silentLogger(),
    });
    cleanup.push(async () => {
      await uplink.close();
      await deleteStream(admin.jsm, subj.stream);
    });
    return { gw, subj, uplink, t: outbox() };
  }

  function forwarder(w: ReturnType<typeof world>, up: Uplink, metrics: GatewayMetrics, logger: Logger): Forwarder {
    const opts: ForwardOptions = { ...batchOpts, maxReadingsPerSec: 0, maxBytesPerSec: 0 };
    return new Forwarder(w.t.outbox, up, w.subj.readings(w.gw), w.gw, opts, metrics, logger);
  }

  /** Sends the first batch of 1..n, then "dies" before removing its rows. */
  async function crashAfterFirstAck(w: ReturnType<typeof world>, n: number): Promise<void> {
    w.t.outbox.commit(messages(1, n));
    const dying = new DiesAfterFirstAck(w.uplink);
    forwarder(w, dying, createGatewayMetrics(false), silentLogger()).start();
    await waitFor(() => dying.acked === 1, "the first batch to be acknowledged");
    w.t.reopen();
  }

  async function drainAndCheck(
    w: ReturnType<typeof world>,
    n: number,
  ): Promise<{ metrics: GatewayMetrics; lines: ReturnType<typeof capture>["lines"] }> {
    const metrics = createGatewayMetrics(false);
    const log = capture();
    const f = forwarder(w, w.uplink, metrics, log.logger);
    f.start();
    await waitFor(() => w.t.outbox.stats().readings === 0, "the outbox to drain");
    await f.stop();
    // Nothing lost, nothing doubled: each reading is in the stream once.
    const seqs = (await readBatches(admin.jsm, w.subj.stream)).flatMap((b) =>
      b.batch.messages.flatMap((m) => m.readings.map((r) => r.seq)),
    );
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    return { metrics, lines: log.lines };
  }

  it("the batch in flight at a crash, resent and answered duplicate, is counted as a resend (info)", async () => {
    const w = world();
    await crashAfterFirstAck(w, 30);
    const { metrics, lines } = await drainAndCheck(w, 30);
    expect(await metricValue(metrics.registry, "datalab_gateway_duplicate_batches_total", { kind: "resend" })).toBe(1);
    expect(await metricValue(metrics.registry, "datalab_gateway_duplicate_batches_total", { kind: "first_send" })).toBe(
      0,
    );
    expect(lines.filter((l) => l.msg.includes("already in the stream") && l.level === 30)).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  it(
    "a batch never sent by this process answered duplicate (in-flight record lost) " +
      "is counted as first_send and logged at warn",
    async () => {
      const w = world();
      await crashAfterFirstAck(w, 25);
      // As if the outbox were restored from a copy taken before the in-flight record was written.
      w.t.outbox.settle(undefined, undefined);
      expect(w.t.outbox.inflight()).toBeUndefined();
      const { metrics, lines } = await drainAndCheck(w, 25);
      expect(
        await metricValue(metrics.registry, "datalab_gateway_duplicate_batches_total", { kind: "first_send" }),
      ).toBe(1);
      expect(await metricValue(metrics.registry, "datalab_gateway_duplicate_batches_total", { kind: "resend" })).toBe(
        0,
      );
      const warned = lines.filter((l) => l.level === 40 && l.msg.includes("had not sent since it started"));
      expect(warned).toHaveLength(1);
      expect(warned[0]!.msgId).toMatch(/:1-10:/);
    },
  );
});
