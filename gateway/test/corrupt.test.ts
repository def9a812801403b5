import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger, subjects } from "@datalab/shared";
import { NATS_URL, tempDir, waitFor } from "@datalab/shared/testing";
import { Outbox } from "../src/outbox/store";
import { GatewayProcess, mqttClient, publishRange, scrape, testWorld } from "./support/gateway";
import { messages, seqsIn } from "./support/outbox";
import { countReadings, deleteStream, natsAdmin, readBatches } from "./support/stream";

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

function dir(): string {
  const d = tempDir("datalab-corrupt-");
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Open, counting what the outbox reports about the file it found. */
function openCounting(path: string): { outbox: Outbox; corrupt: string[] } {
  const corrupt: string[] = [];
  const outbox = Outbox.open(path, { logger: silentLogger(), onCorrupt: (movedTo) => corrupt.push(movedTo) });
  cleanup.push(() => outbox.close());
  return { outbox, corrupt };
}

describe("an unreadable outbox file at start", () => {
  it("a file that is not a database is moved aside (kept intact) and a fresh outbox starts", () => {
    const path = join(dir(), "outbox.db");
    const junk = Buffer.from("this is not an SQLite database, it is what a dying SD card returned\n".repeat(200));
    writeFileSync(path, junk);
    const { outbox, corrupt } = openCounting(path);
    expect(corrupt).toHaveLength(1);
    expect(readFileSync(corrupt[0]!)).toEqual(junk);
    outbox.commit(messages(1, 3));
    expect(seqsIn(outbox)).toEqual([1, 2, 3]);
  });

  it("a database with damaged pages (valid header) is caught by the start-up check and moved aside", () => {
    const path = join(dir(), "outbox.db");
    const first = Outbox.open(path, { logger: silentLogger() });
    first.commit(messages(1, 3_000, { padding: 100 }));
    const oldInstance = first.instance;
    first.close();
    // Overwrite pages 5..12 with garbage; page 1 (the header) stays valid.
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(8 * 4096, 0xa5), 0, 8 * 4096, 4 * 4096);
    closeSync(fd);
    const { outbox, corrupt } = openCounting(path);
    expect(corrupt).toHaveLength(1);
    expect(existsSync(corrupt[0]!)).toBe(true);
    // A new instance id: seqs start again at 1 without colliding with the old file's readings.
    expect(outbox.instance).not.toBe(oldInstance);
    outbox.commit(messages(1, 2));
    expect(seqsIn(outbox)).toEqual([1, 2]);
  });
});

describe("the gateway started on a corrupt outbox file", () => {
  it("starts, says so loudly (log line and metric), and keeps working", async () => {
    const w = testWorld();
    cleanup.push(() => rmSync(w.dataDir, { recursive: true, force: true }));
    writeFileSync(join(w.dataDir, "outbox.db"), Buffer.alloc(64 * 1024, 0x42));
    const gw = new GatewayProcess(w.env).start();
    cleanup.push(async () => void (await gw.kill()));
    const port = await gw.ready();
    const loud = gw.lines().find((l) => String(l.msg).includes("OUTBOX DATABASE IS UNREADABLE"));
    expect(loud?.level).toBe(50);
    expect(String(loud?.movedTo)).toContain("outbox.db.corrupt-");
    expect(await scrape(port, "datalab_gateway_corrupt_databases_total")).toBe(1);
    expect(readdirSync(w.dataDir).some((f) => f.startsWith("outbox.db.corrupt-"))).toBe(true);

    const admin = await natsAdmin(NATS_URL);
    cleanup.push(async () => {
      await deleteStream(admin.jsm, subjects(w.id).stream);
      await admin.nc.close();
    });
    const pub = await mqttClient();
    await publishRange(pub, `${w.topic}/c`, 0, 50);
    await pub.endAsync();
    await waitFor(
      async () => countReadings(await readBatches(admin.jsm, subjects(w.id).stream).catch(() => [])).readings === 50,
      "readings to flow again",
    );
  });
});
