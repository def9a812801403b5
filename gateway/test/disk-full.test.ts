import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { subjects } from "@datalab/shared";
import { runCommand, startNatsServer, tempDir, waitFor, type NatsServer } from "@datalab/shared/testing";
import { GatewayProcess, getJson, mqttClient, scrape, testWorld } from "./support/gateway";
import { countReadings, doubled, natsAdmin, readBatches } from "./support/stream";
import type { GatewayStatus } from "../src/status";
import { connectionOf, messages, openTestOutbox, seqsIn } from "./support/outbox";

/**
 * The outbox on a small file system of its own (an 8 MiB tmpfs, mounted by the test: needs
 * root) with the default 256 MiB cap, i.e. a disk smaller than the cap, and the uplink down.
 * DATALAB_TEST_LONG=1 holds the wedged phase for five minutes instead of one.
 */
const WEDGED_MS = process.env.DATALAB_TEST_LONG === "1" ? 300_000 : 60_000;
const MESSAGES = 40_000;
const MiB = 1024 * 1024;

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) {
    try {
      await c();
    } catch {
      // keep cleaning up
    }
  }
});

const isRoot = process.getuid?.() === 0;

/** Mount an 8 MiB tmpfs under a fresh temp dir; undefined when this machine does not allow it. */
async function smallDisk(): Promise<string | undefined> {
  const dir = join(tempDir("datalab-diskfull-"), "mnt");
  mkdirSync(dir);
  const r = await runCommand("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", dir]);
  if (r.code !== 0) return undefined;
  cleanup.push(async () => void (await runCommand("umount", ["-l", dir])));
  return dir;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Publish `count` padded messages from `from` on, in chunks, waiting for the gateway to take each chunk. */
async function feed(pub: MqttClient, topic: string, port: number, from: number, count: number): Promise<void> {
  const pad = "x".repeat(150);
  for (let i = from; i < from + count; i += 500) {
    const end = Math.min(from + count, i + 500);
    for (let k = i; k < end; k++) pub.publish(topic, `{"name":"sensor1","value":${k},"note":"${pad}"}`);
    await waitFor(
      async () => (await scrape(port, "datalab_gateway_messages_received_total")) >= end,
      `the gateway to take message ${end}`,
      60_000,
    );
  }
}

/** Take every byte the file system has left, as a runaway log would. */
function fillDisk(path: string): void {
  const fd = openSync(path, "w");
  try {
    for (const size of [1024 * 1024, 64 * 1024, 4096, 512]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch {
        // ENOSPC: go on with smaller chunks
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!isRoot)("another file fills the disk (8 MiB tmpfs, needs root to mount)", () => {
  it(
    "the outbox gives back its reserve, drops its oldest as disk_full, keeps committing and settling," +
      " and makes the reserve again",
    async () => {
      const dir = await smallDisk();
      if (!dir) throw new Error("mount -t tmpfs failed although running as root");
      // A cap the disk can hold: the limit that bites is the disk, filled by someone else.
      const t = openTestOutbox({ maxBytes: 4 * MiB }, dir);
      cleanup.push(() => t.outbox.close());
      const reserve = join(dir, "outbox.db-reserve");
      expect(existsSync(reserve)).toBe(true);
      t.outbox.commit(messages(1, 2_000, { padding: 300 }));
      // An empty WAL on a disk full to the last byte: even a delete has nowhere to write.
      connectionOf(t.outbox).pragma("wal_checkpoint(TRUNCATE)");
      fillDisk(join(dir, "filler"));
      const st = statfsSync(dir);
      expect(st.bavail * st.bsize).toBe(0);
      const first = [...t.outbox.scan(0)].slice(0, 10);
      t.outbox.settle(
        {
          firstId: first[0]!.id,
          lastId: first.at(-1)!.id,
          firstSeq: first[0]!.firstSeq,
          lastSeq: first.at(-1)!.lastSeq,
        },
        undefined,
      );
      expect(existsSync(reserve)).toBe(false);
      const forwarded = first.reduce((n, r) => n + r.n, 0);

      let committed = 0;
      for (let g = 0; g < 30; g++) committed += t.outbox.commit(messages(2_001 + g * 100, 100, { padding: 300 }));
      expect(committed).toBe(3_000);
      expect(t.drops.disk_full).toBeGreaterThan(0);
      expect(t.drops.outbox_full).toBe(0);
      const seqs = seqsIn(t.outbox);
      // The oldest went, every one counted; the newest are all there.
      expect(seqs.at(-1)).toBe(5_000);
      expect(seqs.length + t.drops.disk_full + forwarded).toBe(5_000);
      expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);

      // Forwarding deletes rows, which writes pages first: it works on the full disk too.
      const rows = [...t.outbox.scan(0)];
      t.outbox.settle(
        { firstId: rows[0]!.id, lastId: rows.at(-1)!.id, firstSeq: rows[0]!.firstSeq, lastSeq: rows.at(-1)!.lastSeq },
        undefined,
      );
      expect(t.outbox.stats().readings).toBe(0);

      // Room again: the reserve comes back at the next maintenance step.
      rmSync(join(dir, "filler"));
      t.outbox.maintain();
      expect(existsSync(reserve)).toBe(true);
    },
  );
});

describe.skipIf(!isRoot)("a full disk with the uplink down (8 MiB tmpfs, needs root to mount)", () => {
  it(
    `drops the oldest as disk_full, keeps memory flat while wedged (${WEDGED_MS / 1000} s), ` +
      "logs with a throttle, and drains once the uplink returns",
    async () => {
      const dataDir = await smallDisk();
      if (!dataDir) throw new Error("mount -t tmpfs failed although running as root");
      const nats: NatsServer = await startNatsServer();
      cleanup.push(async () => {
        await nats.stop();
        rmSync(nats.storeDir, { recursive: true, force: true });
      });
      const w = testWorld({ DATALAB_NATS_URL: nats.url, DATALAB_BATCH_MAX_AGE_MS: "50" });
      w.env.DATALAB_DATA_DIR = dataDir;
      const gw = new GatewayProcess(w.env).start();
      cleanup.push(async () => void (await gw.kill()));
      const port = await gw.ready();
      const pid = gw.proc!.pid!;
      const pub = await mqttClient();
      cleanup.push(() => pub.endAsync());
      const topic = `${w.topic}/s1`;
      const status = () => getJson<GatewayStatus>(port, "/status");

      await nats.stop();
      await waitFor(async () => (await status()).uplink?.state !== "connected", "the gateway to notice the outage");

      // About twice what the disk holds.
      await feed(pub, topic, port, 0, MESSAGES);
      await waitFor(
        async () => {
          const s = await status();
          return (
            s.outbox.readings +
              (s.dropped.disk_full ?? 0) +
              (s.dropped.outbox_full ?? 0) +
              (s.dropped.commit_failed ?? 0) ===
            MESSAGES
          );
        },
        "every reading to be committed or counted",
        60_000,
      );
      let s = await status();
      expect(s.dropped.disk_full, JSON.stringify(s)).toBeGreaterThan(MESSAGES / 4);
      expect(s.dropped.commit_failed ?? 0).toBe(0);
      expect(await scrape(port, "datalab_gateway_dropped_readings_total", { reason: "disk_full" })).toBe(
        s.dropped.disk_full,
      );

      // Wedged: disk full, uplink down, a trickle of new readings. RSS must not grow.
      const logStart = gw.log.length;
      const wedgedFrom = Date.now();
      const rss: number[] = [rssBytes(pid)];
      let next = MESSAGES;
      while (Date.now() - wedgedFrom < WEDGED_MS) {
        await feed(pub, topic, port, next, 20);
        next += 20;
        await new Promise((r) => setTimeout(r, 1_000));
        if (rss.length < (Date.now() - wedgedFrom) / 5_000) rss.push(rssBytes(pid));
      }
      rss.push(rssBytes(pid));
      const growth = Math.max(...rss) - rss[0]!;
      console.log(
        `wedged ${WEDGED_MS / 1000} s: RSS first ${(rss[0]! / MiB).toFixed(1)} MiB, ` +
          `max ${(Math.max(...rss) / MiB).toFixed(1)} MiB, last ${(rss.at(-1)! / MiB).toFixed(1)} MiB, ` +
          `growth ${(growth / MiB).toFixed(1)} MiB`,
      );
      expect(growth).toBeLessThan(10 * MiB);
      // The errors of a full disk are throttled: a line per reason per minute, not per commit.
      const wedgedLog = gw.log
        .slice(logStart)
        .split("\n")
        .filter((l) => /"level":(40|50)/.test(l));
      expect(wedgedLog.length, wedgedLog.slice(0, 5).join("\n")).toBeLessThanOrEqual(
        3 * Math.ceil(WEDGED_MS / 60_000) + 3,
      );

      await waitFor(
        async () => {
          s = await status();
          return (
            s.outbox.readings +
              (s.dropped.disk_full ?? 0) +
              (s.dropped.outbox_full ?? 0) +
              (s.dropped.commit_failed ?? 0) ===
            next
          );
        },
        "the trickle to be committed or counted",
        30_000,
      );
      const kept = s.outbox.readings;
      expect(kept).toBeGreaterThan(MESSAGES / 10);
      console.log(`after the wedge: ${kept} readings kept, dropped ${JSON.stringify(s.dropped)}, ${next} received`);

      // The uplink returns: forwarding resumes by itself and the outbox empties.
      await nats.start();
      await waitFor(
        async () => (await status()).outbox.readings === 0,
        "the outbox to drain after the uplink returned",
        60_000,
      );
      const { nc, jsm } = await natsAdmin(nats.url);
      cleanup.push(() => nc.close());
      const c = countReadings(await readBatches(jsm, subjects(w.id).stream));
      expect(doubled(c)).toEqual([]);
      expect(c.readings).toBe(kept);
      // What went was the oldest: the newest reading is there, and what is there is one run up to it.
      expect(c.values.get(next - 1)).toBe(1);
      const values = [...c.values.keys()].sort((a, b) => a - b);
      expect(values.at(-1)! - values[0]! + 1).toBe(values.length);
    },
    WEDGED_MS + 300_000,
  );
});
