/**
 * Hub insert rate into PostgreSQL beside `psql \copy` of the same rows into the same table.
 *
 *   pnpm exec tsx hub/bench/insert.ts [--readings 300000] [--batch 2000] [--out FILE]
 *
 * Every run gets a fresh database (same migrations, so the same table and indexes: primary
 * key, B-tree on (sensor_id, metric, ts), BRIN on ts). Measured, in this order:
 * - `\copy`: psql streams a CSV of the rows into `readings` (one COPY, one transaction) —
 *   the ceiling for getting rows into this table;
 * - the hub: PostgresSink.write, batches of ~2000 readings, one transaction each (readings
 *   insert + sensors upsert + gateways upsert), one batch at a time and then 4 at a time
 *   (DATALAB_SINK_CONCURRENCY's default);
 * - the same batches written again into the filled table: every reading a duplicate (the
 *   cost of a redelivery storm; nothing may be inserted).
 * Prints a table and writes the figures as JSON (default hub/bench/results/insert.json).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { batchReadings, BATCH_FORMAT_VERSION, silentLogger, type Batch, type WireMessage } from "@datalab/shared";
import { createTestDatabase, PG_URL, tempDir, type TestDatabase } from "@datalab/shared/testing";
import { migrate } from "../src/sinks/postgres-migrate";
import { PostgresSink } from "../src/sinks/postgres";
import type { SinkBatch } from "../src/sinks/types";

const { values } = parseArgs({
  options: {
    readings: { type: "string", default: "300000" },
    batch: { type: "string", default: "2000" },
    out: { type: "string", default: fileURLToPath(new URL("./results/insert.json", import.meta.url)) },
  },
});
const N = Number(values.readings);
const PER_BATCH = Number(values.batch);
const METRICS = ["temperature", "humidity", "battery", "light"] as const;
const UNITS = ["Cel", "%RH", "V", "lx"] as const;
const SENSORS = 200;
const GATEWAYS = 4;

/** Batches like a gateway's: messages of 4 metrics from 200 sensors, seqs in order, time in order. */
function makeBatches(): SinkBatch[] {
  const out: SinkBatch[] = [];
  const t0 = Date.UTC(2026, 0, 1);
  const perGateway = Math.ceil(N / GATEWAYS);
  let streamSeq = 0;
  for (let g = 0; g < GATEWAYS; g++) {
    const gatewayId = `bench-gw${g}`;
    let seq = 1;
    while (seq <= perGateway) {
      const messages: WireMessage[] = [];
      const firstSeq = seq;
      while (seq <= perGateway && seq - firstSeq < PER_BATCH) {
        const sensor = `sensor-${(seq >> 2) % SENSORS}`;
        const at = t0 + seq * 50;
        const readings = [];
        for (let k = 0; k < 4 && seq <= perGateway; k++, seq++) {
          readings.push({
            seq,
            sensorId: sensor,
            metric: METRICS[k]!,
            value: ((seq * 13) % 1000) / 10,
            unit: UNITS[k]!,
            ts: at,
          });
        }
        messages.push({
          source: "mqtt:sensors",
          receivedAt: at,
          payload: `{"sensor":"${sensor}"}`,
          encoding: "utf8",
          readings,
        });
      }
      const batch: Batch = {
        v: BATCH_FORMAT_VERSION,
        gatewayId,
        instance: "bench",
        firstSeq,
        lastSeq: seq - 1,
        sentAt: t0 + seq * 50,
        messages,
      };
      out.push({
        gatewayId,
        batch,
        readings: batchReadings(batch, gatewayId),
        streamSeq: ++streamSeq,
        bytes: JSON.stringify(batch).length,
      });
    }
  }
  return out;
}

async function freshDb(): Promise<TestDatabase> {
  const db = await createTestDatabase(PG_URL);
  db.pool.on("error", () => undefined);
  await migrate(db.pool, silentLogger());
  await db.pool.query("CHECKPOINT").catch(() => undefined);
  return db;
}

async function countRows(db: TestDatabase): Promise<number> {
  return Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n);
}

async function hubWrite(
  db: TestDatabase,
  batches: SinkBatch[],
  concurrency: number,
): Promise<{ seconds: number; inserted: number; duplicates: number }> {
  const pool = new pg.Pool({ connectionString: db.url, max: concurrency + 1 });
  const sink = new PostgresSink(pool, silentLogger());
  let next = 0;
  let inserted = 0;
  let duplicates = 0;
  const t = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const r = await sink.write(batches[next++]!);
        inserted += r.inserted;
        duplicates += r.duplicates;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  await sink.close();
  return { seconds, inserted, duplicates };
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function copyIn(db: TestDatabase, batches: SinkBatch[]): { seconds: number } {
  const dir = tempDir("datalab-bench-");
  const file = join(dir, "readings.csv");
  const lines: string[] = [];
  for (const b of batches) {
    for (const r of b.readings) {
      lines.push(
        [
          r.gatewayId,
          r.instance,
          r.seq,
          csvField(r.sensorId),
          csvField(r.metric),
          new Date(r.ts).toISOString(),
          r.value,
          r.unit ?? "",
          new Date(r.receivedAt).toISOString(),
          csvField(r.source),
        ].join(","),
      );
    }
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
  const cmd =
    "\\copy readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source) " +
    `FROM '${file}' WITH (FORMAT csv)`;
  const t = process.hrtime.bigint();
  const r = spawnSync("psql", [db.url, "-v", "ON_ERROR_STOP=1", "-c", cmd], { encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`psql \\copy failed: ${r.stderr}`);
  return { seconds };
}

interface Row {
  method: string;
  readings: number;
  seconds: number;
  readingsPerSecond: number;
  vsCopy: number;
  inserted: number;
}

async function main(): Promise<void> {
  const batches = makeBatches();
  const total = batches.reduce((a, b) => a + b.readings.length, 0);
  process.stderr.write(`${total} readings in ${batches.length} batches of ~${PER_BATCH}\n`);
  const rows: Row[] = [];
  const dbs: TestDatabase[] = [];
  try {
    // \copy first, on its own fresh database.
    const copyDb = await freshDb();
    dbs.push(copyDb);
    const copy = copyIn(copyDb, batches);
    const copyRate = total / copy.seconds;
    rows.push({
      method: "psql \\copy (CSV, one COPY)",
      readings: total,
      seconds: copy.seconds,
      readingsPerSecond: copyRate,
      vsCopy: 1,
      inserted: await countRows(copyDb),
    });

    for (const concurrency of [1, 4]) {
      const db = await freshDb();
      dbs.push(db);
      const r = await hubWrite(db, batches, concurrency);
      rows.push({
        method: `hub PostgresSink.write, ${concurrency} batch${concurrency > 1 ? "es" : ""} at a time`,
        readings: total,
        seconds: r.seconds,
        readingsPerSecond: total / r.seconds,
        vsCopy: total / r.seconds / copyRate,
        inserted: r.inserted,
      });
      if (concurrency === 1) {
        // Idempotence: the same batches again into the filled table insert nothing.
        const again = await hubWrite(db, batches, 1);
        if (again.inserted !== 0 || again.duplicates !== total)
          throw new Error(`re-run inserted ${again.inserted} rows: not idempotent`);
        if ((await countRows(db)) !== total) throw new Error("row count changed on re-run");
        rows.push({
          method: "hub, same batches again (all duplicates)",
          readings: total,
          seconds: again.seconds,
          readingsPerSecond: total / again.seconds,
          vsCopy: total / again.seconds / copyRate,
          inserted: again.inserted,
        });
      }
    }
  } finally {
    for (const db of dbs) await db.drop().catch(() => undefined);
  }

  const head = ["method", "readings", "seconds", "readings/s", "× \\copy", "rows inserted"];
  const body = rows.map((r) => [
    r.method,
    String(r.readings),
    r.seconds.toFixed(2),
    Math.round(r.readingsPerSecond).toLocaleString("en"),
    r.vsCopy.toFixed(2),
    String(r.inserted),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  process.stdout.write(`${line(head)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${body.map(line).join("\n")}\n`);

  const pgVersion = spawnSync("psql", [PG_URL, "-Atc", "SHOW server_version"], { encoding: "utf8" }).stdout.trim();
  const result = {
    bench: "hub/bench/insert.ts",
    at: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      postgres: pgVersion,
    },
    readings: total,
    batchSize: PER_BATCH,
    batches: batches.length,
    rows,
  };
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`figures written to ${values.out}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
