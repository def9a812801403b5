import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger, type Logger } from "@datalab/shared";
import { freePort, tempDir, waitFor } from "@datalab/shared/testing";
import { Outbox, type DropReason } from "../src/outbox/store";
import { GatewayProcess, getJson, mqttClient, publishRange, scrape, testWorld } from "./support/gateway";
import type { GatewayStatus } from "../src/status";
import { connectionOf, messages, seqsIn } from "./support/outbox";

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

function dir(): string {
  const d = tempDir("datalab-damage-");
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

interface Opened {
  outbox: Outbox;
  /** Log lines at warn and error level. */
  lines: { level: string; obj: Record<string, unknown>; msg: string }[];
  corrupt: string[];
  drops: Record<DropReason, number>;
}

/** A logger that keeps what it is told (the outbox takes its logger from the caller). */
function capturing(lines: Opened["lines"]): Logger {
  const base = silentLogger();
  const logger: Logger = new Proxy(base, {
    get(target, prop) {
      if (prop === "error" || prop === "warn")
        return (obj: Record<string, unknown>, msg: string) => lines.push({ level: prop, obj, msg });
      if (prop === "child") return () => logger;
      return Reflect.get(target, prop) as unknown;
    },
  });
  return logger;
}

function open(path: string): Opened {
  const lines: Opened["lines"] = [];
  const corrupt: string[] = [];
  const drops: Record<DropReason, number> = { outbox_full: 0, disk_full: 0, commit_failed: 0, outbox_damaged: 0 };
  const outbox = Outbox.open(path, {
    logger: capturing(lines),
    onCorrupt: (movedTo) => corrupt.push(movedTo),
    onDrop: (r, n) => (drops[r] += n),
  });
  cleanup.push(() => outbox.close());
  return { outbox, lines, corrupt, drops };
}

/**
 * What `kill -9` leaves: the files as they are while the outbox is open (every commit is in
 * the WAL; closing would checkpoint it away), copied to `to`.
 */
function crashCopy(from: string, to: string): void {
  for (const suffix of ["", "-wal", "-ledger"]) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
}

/** Fill an outbox with `groups` commits of 100 one-reading messages; returns the last seq given. */
function fill(o: Outbox, groups: number, from = 1): number {
  for (let g = 0; g < groups; g++) o.commit(messages(from + g * 100, 100, { padding: 100 }));
  return o.nextSequence - 1;
}

function loud(o: Opened, kind: string): Record<string, unknown> | undefined {
  return o.lines.find((l) => l.level === "error" && l.obj.kind === kind && l.msg.startsWith("OUTBOX DAMAGED"))?.obj;
}

/** No key reused: what is committed after the damage gets seqs above every seq handed out before it. */
function expectFreshSeqs(o: Outbox, lastGiven: number): void {
  const before = new Set(seqsIn(o));
  o.commit(messages(900_000, 3));
  const added = seqsIn(o).filter((s) => !before.has(s));
  expect(added).toHaveLength(3);
  expect(Math.min(...added)).toBeGreaterThan(lastGiven);
}

describe("outbox damage found at start: detected, kept aside, logged, counted, and no key reused", () => {
  it("a WAL frame damaged in the middle (SQLite would silently forget every commit after it)", () => {
    const a = join(dir(), "outbox.db");
    const first = open(a);
    const lastGiven = fill(first.outbox, 20);
    const b = join(dir(), "outbox.db");
    crashCopy(a, b);
    // 100 bytes of rot inside the page data of a frame two thirds into the WAL.
    const wal = `${b}-wal`;
    const frames = Math.floor((statSync(wal).size - 32) / (24 + 4096));
    const fd = openSync(wal, "r+");
    writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 32 + Math.floor((frames * 2) / 3) * (24 + 4096) + 24 + 1_000);
    closeSync(fd);

    const o = open(b);
    const found = seqsIn(o.outbox).length;
    expect(found).toBeLessThan(2_000);
    expect(found).toBeGreaterThan(0);
    expect(o.outbox.instance).toBe(first.outbox.instance);
    const line = loud(o, "wal_damaged");
    expect(line, JSON.stringify(o.lines)).toBeDefined();
    expect(o.corrupt).toHaveLength(1);
    expect(existsSync(o.corrupt[0]!)).toBe(true);
    expect(statSync(o.corrupt[0]!).size).toBe(statSync(`${a}-wal`).size);
    // The estimate is the seqs the file no longer knows of: exactly what was lost here.
    expect(o.drops.outbox_damaged).toBe(2_000 - found);
    expect(line!.lostReadingsEstimate).toBe(2_000 - found);
    expectFreshSeqs(o.outbox, lastGiven);
  });

  it(
    "kill -9 of the gateway, then 8 KiB of garbage over the start of its WAL: counted, logged, " +
      "and new readings never reuse a delivered key",
    async () => {
      // The uplink points at a port nobody listens on: every reading stays in the outbox.
      const w = testWorld({ DATALAB_NATS_URL: `nats://127.0.0.1:${await freePort()}` });
      cleanup.push(() => rmSync(w.dataDir, { recursive: true, force: true }));
      let gw = new GatewayProcess(w.env).start();
      cleanup.push(async () => void (await gw.kill()));
      let port = await gw.ready();
      const pub = await mqttClient();
      cleanup.push(() => pub.endAsync());
      await publishRange(pub, `${w.topic}/k`, 0, 500);
      await waitFor(
        async () => (await scrape(port, "datalab_gateway_outbox_readings")) === 500,
        "500 readings committed",
      );
      await gw.kill("SIGKILL");
      const wal = join(w.dataDir, "outbox.db-wal");
      expect(statSync(wal).size).toBeGreaterThan(8 * 1024);
      const fd = openSync(wal, "r+");
      writeSync(fd, Buffer.alloc(8 * 1024, 0xc3), 0, 8 * 1024, 0);
      closeSync(fd);
      const old = JSON.parse(readFileSync(join(w.dataDir, "outbox.db-ledger"), "utf8").trim()) as {
        instance: string;
        nextSeq: number;
      };
      expect(old.nextSeq).toBe(501);

      gw = new GatewayProcess(w.env).start();
      port = await gw.ready();
      const line = gw.lines().find((l) => String(l.msg).startsWith("OUTBOX DAMAGED"));
      expect(line?.level).toBe(50);
      expect(line?.kind).toBe("wal_damaged");
      expect(line?.lostReadingsEstimate).toBe(500);
      expect(await scrape(port, "datalab_gateway_corrupt_databases_total")).toBe(1);
      expect(await scrape(port, "datalab_gateway_dropped_readings_total", { reason: "outbox_damaged" })).toBe(500);
      expect(readdirSync(w.dataDir).some((f) => f.includes(".damaged-") && f.endsWith("-wal"))).toBe(true);
      const status = await getJson<GatewayStatus>(port, "/status");
      expect(status.outbox.damage).toMatchObject([{ kind: "wal_damaged", lostReadings: 500 }]);
      expect(status.dropped.outbox_damaged).toBe(500);
      // New readings: their keys (instance, seq) are not among the 500 that may have been delivered.
      await publishRange(pub, `${w.topic}/k`, 500, 510);
      await waitFor(
        async () => (await scrape(port, "datalab_gateway_outbox_readings")) === 10,
        "10 new readings committed",
      );
      await gw.kill("SIGTERM");
      const o = open(join(w.dataDir, "outbox.db"));
      const seqs = seqsIn(o.outbox);
      expect(seqs).toHaveLength(10);
      // The WAL held the whole outbox, so the file starts over under a new instance; had it kept
      // the instance, the seqs would have skipped past every one handed out before.
      if (o.outbox.instance === old.instance) expect(Math.min(...seqs)).toBeGreaterThan(500);
      else expect(o.outbox.instance).not.toBe(old.instance);
    },
  );

  it(
    "garbage over the end of the WAL (the last commits' frames gone, nothing after them to see): " +
      "the ledger shows the rollback",
    () => {
      const a = join(dir(), "outbox.db");
      const first = open(a);
      const lastGiven = fill(first.outbox, 20);
      const b = join(dir(), "outbox.db");
      crashCopy(a, b);
      const wal = `${b}-wal`;
      const size = statSync(wal).size;
      const fd = openSync(wal, "r+");
      writeSync(fd, Buffer.alloc(8 * 1024, 0x11), 0, 8 * 1024, size - 8 * 1024);
      closeSync(fd);

      const o = open(b);
      const found = seqsIn(o.outbox).length;
      expect(found).toBeLessThan(2_000);
      const line = loud(o, "rolled_back") ?? loud(o, "wal_damaged");
      expect(line, JSON.stringify(o.lines)).toBeDefined();
      expect(o.corrupt).toHaveLength(1);
      expect(o.drops.outbox_damaged).toBe(2_000 - found);
      expectFreshSeqs(o.outbox, lastGiven);
    },
  );

  it("the database file cut to 0 bytes (SQLite would open it as a new, empty outbox)", () => {
    const path = join(dir(), "outbox.db");
    const first = open(path);
    fill(first.outbox, 30);
    const oldInstance = first.outbox.instance;
    first.outbox.close();
    truncateSync(path, 0);

    const o = open(path);
    const line = loud(o, "truncated");
    expect(line).toBeDefined();
    expect(line!.lostReadingsEstimate).toBe(3_000);
    expect(o.drops.outbox_damaged).toBe(3_000);
    expect(o.corrupt).toHaveLength(1);
    expect(existsSync(o.corrupt[0]!)).toBe(true);
    expect(o.corrupt[0]).toContain("outbox.db.truncated-");
    // A new instance: seqs may start at 1 again without naming any reading of the old file.
    expect(o.outbox.instance).not.toBe(oldInstance);
    expect(seqsIn(o.outbox)).toEqual([]);
  });

  it(
    "bit rot inside a row's text (passes quick_check): the row is moved aside to a file, " +
      "its readings counted, the others kept",
    () => {
      const path = join(dir(), "outbox.db");
      const first = open(path);
      const lastGiven = fill(first.outbox, 10);
      first.outbox.close();
      // Change one digit of one reading's value inside the file (wire format 2: `[seq,"s1","value",567,…]`):
      // the JSON stays valid, the value is false.
      const bytes = readFileSync(path);
      const at = bytes.indexOf(Buffer.from('"value",567,'));
      expect(at).toBeGreaterThan(0);
      bytes[at + 8] = "9".charCodeAt(0);
      writeFileSync(path, bytes);

      const o = open(path);
      expect(connectionOf(o.outbox).pragma("quick_check", { simple: true })).toBe("ok");
      const line = loud(o, "rows_damaged");
      expect(line, JSON.stringify(o.lines)).toBeDefined();
      const lost = o.drops.outbox_damaged;
      expect(lost).toBeGreaterThan(0);
      expect(lost).toBeLessThanOrEqual(64);
      expect(o.corrupt).toHaveLength(1);
      const kept = readFileSync(o.corrupt[0]!, "utf8");
      expect(kept).toContain('\\"value\\",967,');
      const seqs = seqsIn(o.outbox);
      expect(seqs.length + lost).toBe(1_000);
      expect(seqs).not.toContain(567);
      expectFreshSeqs(o.outbox, lastGiven);
    },
  );

  it(
    "a crash with a sound WAL, cut by SQLite to journal_size_limit (not a whole frame): " +
      "nothing reported, seqs continue without a skip",
    () => {
      const a = join(dir(), "outbox.db");
      const lines: Opened["lines"] = [];
      // A small cap: a 64 KiB journal_size_limit the WAL passes and is cut back to.
      const first = Outbox.open(a, { logger: capturing(lines), maxBytes: 2 * 1024 * 1024 });
      cleanup.push(() => first.close());
      const wal = `${a}-wal`;
      let g = 0;
      const unaligned = () => existsSync(wal) && (statSync(wal).size - 32) % (24 + 4096) !== 0;
      for (; g < 200 && !(g > 5 && unaligned()); g++) first.commit(messages(1 + g * 20, 20, { padding: 100 }));
      expect(unaligned()).toBe(true);
      const b = join(dir(), "outbox.db");
      crashCopy(a, b);
      const o = open(b);
      expect(o.lines.filter((l) => l.level === "error")).toEqual([]);
      expect(o.corrupt).toEqual([]);
      expect(o.drops.outbox_damaged).toBe(0);
      o.outbox.commit(messages(900_000, 1));
      expect(seqsIn(o.outbox).at(-1)).toBe(g * 20 + 1);
    },
  );

  it("a sound outbox reopened: nothing reported, seqs continue without a skip", () => {
    const path = join(dir(), "outbox.db");
    const first = open(path);
    fill(first.outbox, 3);
    first.outbox.close();
    const o = open(path);
    expect(o.lines.filter((l) => l.level === "error")).toEqual([]);
    expect(o.corrupt).toEqual([]);
    expect(o.drops.outbox_damaged).toBe(0);
    o.outbox.commit(messages(301, 1));
    expect(seqsIn(o.outbox).at(-1)).toBe(301);
  });
});
