import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  ensureReadingsStream,
  natsConnectionOptions,
  silentLogger,
  subjects,
  UplinkError,
  type UplinkErrorKind,
} from "@datalab/shared";
import { NATS_URL, startNatsServer, uniqueId, waitFor } from "@datalab/shared/testing";
import { InProcessUplink } from "../src/uplink/inprocess";
import { NatsUplink } from "../src/uplink/nats";
import type { Uplink } from "../src/uplink/types";
import { deleteStream, natsAdmin } from "./support/stream";

/**
 * One contract, run against every Uplink (STYLE.md item 3): what the forwarder relies on to
 * remove rows from the outbox only after the other side has them, and what /status shows.
 */
interface UplinkUnderTest {
  uplink: Uplink;
  /** A subject the other side stores. */
  subject: string;
  /** A subject the other side refuses, how the refusal is classified and what it says. */
  refused: { subject: string; kind: UplinkErrorKind; message: RegExp };
  /** Health reports received so far on `reportSubject`. */
  reports(): string[];
  reportSubject: string;
  cleanup(): Promise<void>;
}

/** The clock the uplink is given: `since` must come from it, never from Date.now. */
const clock = { t: 1_000_000 };
const now = () => clock.t;

let admin: { nc: NatsConnection; jsm: JetStreamManager };

beforeAll(async () => {
  admin = await natsAdmin(NATS_URL);
});

afterAll(async () => {
  await admin.nc.close();
});

async function connected(u: Uplink): Promise<void> {
  await waitFor(async () => {
    if (u.status().state === "connected") return true;
    await u.changed(500);
    return u.status().state === "connected";
  }, `the ${u.kind} uplink to connect`);
}

function batch(n: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ n }));
}

function uplinkContract(name: string, open: () => Promise<UplinkUnderTest>) {
  describe(`${name} uplink contract`, () => {
    let t: UplinkUnderTest;
    beforeAll(async () => {
      clock.t = 1_000_000;
      t = await open();
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    it("reaches connected and names its server; since comes from the injected clock", async () => {
      await connected(t.uplink);
      const s = t.uplink.status();
      expect(s.server).toBeTruthy();
      expect(s.since).toBe(1_000_000);
      expect(s.problem).toBeUndefined();
    });

    it("publish resolves with the PubAck: a stream sequence, growing, not a duplicate", async () => {
      const a = await t.uplink.publish(t.subject, batch(1), uniqueId("m"));
      const b = await t.uplink.publish(t.subject, batch(2), uniqueId("m"));
      expect(a.duplicate).toBe(false);
      expect(b.duplicate).toBe(false);
      expect(a.seq).toBeGreaterThan(0);
      expect(b.seq).toBeGreaterThan(a.seq);
    });

    it("the same msg-id again is answered as a duplicate of the stored copy", async () => {
      const id = uniqueId("m");
      const first = await t.uplink.publish(t.subject, batch(3), id);
      const again = await t.uplink.publish(t.subject, batch(3), id);
      expect(first.duplicate).toBe(false);
      expect(again).toEqual({ seq: first.seq, duplicate: true });
    });

    it("a refused publish: an UplinkError whose kind is the status problem until a publish gets through", async () => {
      const err = await t.uplink.publish(t.refused.subject, batch(4), uniqueId("m")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UplinkError);
      const e = err as UplinkError;
      expect(e.kind).toBe(t.refused.kind);
      expect(e.message).toMatch(t.refused.message);
      const s = t.uplink.status();
      expect(s.problem).toBe(t.refused.kind);
      expect(s.lastError).toMatch(t.refused.message);
      // A refusal of one batch is not a lost connection.
      expect(s.state).toBe("connected");
      expect((await t.uplink.publish(t.subject, batch(5), uniqueId("m"))).duplicate).toBe(false);
      // ...and a publish that gets through ends it: the status no longer names a problem.
      expect(t.uplink.status()).toMatchObject({ state: "connected", problem: undefined, lastError: undefined });
    });

    it("changed() resolves after its timeout when nothing changes", async () => {
      const before = t.uplink.status();
      const started = performance.now();
      await t.uplink.changed(100);
      expect(performance.now() - started).toBeGreaterThanOrEqual(90);
      expect(t.uplink.status().state).toBe(before.state);
    });

    it("sendReport, where the uplink has one, delivers fire-and-forget", async () => {
      if (!t.uplink.sendReport) return;
      t.uplink.sendReport(t.reportSubject, new TextEncoder().encode("report-1"));
      await waitFor(() => t.reports().includes("report-1"), "the health report to arrive");
    });

    it("close: state closed (since from the clock), a waiting changed() wakes, publish is refused", async () => {
      const waiting = t.uplink.changed(60_000);
      clock.t = 2_000_000;
      await t.uplink.close();
      const woke = await Promise.race([
        waiting.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
      ]);
      expect(woke).toBe(true);
      expect(t.uplink.status()).toMatchObject({ state: "closed", since: 2_000_000 });
      const err = await t.uplink.publish(t.subject, batch(6), uniqueId("m")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UplinkError);
      expect((err as UplinkError).kind).toBe("unreachable");
      expect((err as Error).message).toMatch(/closed/);
    });
  });
}

/** A stream on the shared server for one suite, and a subscription to its health reports. */
async function streamWorld(prefix: string) {
  const subj = subjects(prefix);
  await ensureReadingsStream(admin.jsm, subj);
  const gw = uniqueId("gw");
  const got: string[] = [];
  const sub = admin.nc.subscribe(subj.status(gw), {
    callback: (_err, m) => {
      got.push(new TextDecoder().decode(m.data));
    },
  });
  await admin.nc.flush();
  return {
    subj,
    gw,
    reports: () => got,
    cleanup: async () => {
      sub.unsubscribe();
      await deleteStream(admin.jsm, subj.stream);
    },
  };
}

uplinkContract("NATS", async () => {
  const w = await streamWorld(uniqueId("uc"));
  const uplink = new NatsUplink({
    connection: natsConnectionOptions([NATS_URL], {}, w.gw),
    subjects: w.subj,
    ensureStream: false,
    logger: silentLogger(),
    now,
  });
  return {
    uplink,
    subject: w.subj.readings(w.gw),
    refused: { subject: uniqueId("nostream"), kind: "no_stream", message: /no JetStream stream takes/ },
    reports: w.reports,
    reportSubject: w.subj.status(w.gw),
    cleanup: async () => {
      await uplink.close();
      await w.cleanup();
    },
  };
});

/**
 * The in-process uplink's receiver is, in the desktop demo, the hub's direct intake, which
 * promises what a JetStream PubAck does (resolve once stored, `duplicate` by msg-id). The
 * gateway does not import the hub, so here the receiver is JetStream itself on the real server.
 */
uplinkContract("in-process", async () => {
  const w = await streamWorld(uniqueId("ui"));
  const js = jetstream(admin.nc, { timeout: 5_000 });
  const uplink = new InProcessUplink(
    async (subject, data, msgId) => {
      const ack = await js.publish(subject, data, { msgID: msgId });
      return { seq: ack.seq, duplicate: ack.duplicate };
    },
    (subject, data) => admin.nc.publish(subject, data),
    now,
  );
  return {
    uplink,
    subject: w.subj.readings(w.gw),
    // The receiver's error is passed on whole: it is not a NATS client error to classify.
    refused: { subject: uniqueId("nostream"), kind: "other", message: /jetstream is not enabled/ },
    reports: w.reports,
    reportSubject: w.subj.status(w.gw),
    cleanup: async () => {
      await uplink.close();
      await w.cleanup();
    },
  };
});

describe("NATS uplink across an outage (a server of its own)", () => {
  it("leaves connected with problem unreachable, refuses publishes as unreachable, and comes back", async () => {
    const nats = await startNatsServer();
    const subj = subjects(uniqueId("uo"));
    const gw = uniqueId("gw");
    const uplink = new NatsUplink({
      connection: natsConnectionOptions([nats.url], {}, gw),
      subjects: subj,
      ensureStream: true,
      logger: silentLogger(),
      now,
    });
    try {
      await connected(uplink);
      await uplink.publish(subj.readings(gw), batch(1), uniqueId("m"));

      const left = uplink.changed(30_000);
      clock.t = 3_000_000;
      await nats.stop();
      await left;
      await waitFor(() => uplink.status().state !== "connected", "the uplink to notice the outage");
      expect(uplink.status()).toMatchObject({ problem: "unreachable", since: 3_000_000 });
      const err = await uplink.publish(subj.readings(gw), batch(2), uniqueId("m")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UplinkError);
      expect((err as UplinkError).kind).toBe("unreachable");

      clock.t = 4_000_000;
      await nats.start();
      await connected(uplink);
      expect(uplink.status()).toMatchObject({ problem: undefined, lastError: undefined, since: 4_000_000 });
      // The store survived the restart: the stream is still there and takes the next batch.
      expect((await uplink.publish(subj.readings(gw), batch(3), uniqueId("m"))).seq).toBe(2);
    } finally {
      await uplink.close();
      await nats.stop();
      rmSync(nats.storeDir, { recursive: true, force: true });
    }
  });
});
