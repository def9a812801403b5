/**
 * What each index of `readings` costs Postgres: the backends' CPU-seconds per 100k readings
 * the hub's sink writes, on the schema as migrated and with one index left out at a time.
 *
 *   pnpm exec tsx hub/bench/postgres-cpu.ts [--rounds 3] [--variants schema,no-measurement-index,...]
 *
 * Each round of each variant gets a fresh database; variants alternate within a round, so
 * machine load falls on all of them alike. The writes are the e2e stage's flood as the hub
 * sees it: 50 batches of 2,000 single-reading messages from 100 sensors, sensor-stamped, four
 * batches in flight (PostgresSink groups them as under a flood). A variant without an index
 * is not a schema the hub could run on (the measurement index folds repeats, the primary key
 * makes a redelivery harmless): it prices the index, nothing more.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { silentLogger, type Batch, type Reading } from "@datalab/shared";
import { createTestDatabase, PG_URL } from "@datalab/shared/testing";
import { migrate } from "../src/sinks/postgres-migrate";
import { PostgresSink } from "../src/sinks/postgres";
import { BackendCpu } from "../../bench/lib/pg-backends";

const VARIANTS: Record<string, string> = {
  schema: "",
  "no-measurement-index": "DROP INDEX readings_sensor_metric_ts",
  "no-primary-key": "ALTER TABLE readings DROP CONSTRAINT readings_pkey",
  "no-brin": "DROP INDEX readings_ts_brin",
  "no-sensors-last-seen": "DROP INDEX sensors_last_seen",
  "collate-c":
    'ALTER TABLE readings ALTER COLUMN gateway_id TYPE text COLLATE "C", ALTER COLUMN instance TYPE text COLLATE "C",' +
    ' ALTER COLUMN sensor_id TYPE text COLLATE "C", ALTER COLUMN metric TYPE text COLLATE "C"',
  // The primary key's order before migration 005.
  "key-text-first": "ALTER TABLE readings DROP CONSTRAINT readings_pkey, ADD PRIMARY KEY (gateway_id, instance, seq)",
  "no-index": [
    "DROP INDEX readings_sensor_metric_ts",
    "DROP INDEX readings_ts_brin",
    "ALTER TABLE readings DROP CONSTRAINT readings_pkey",
  ].join("; "),
};

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    variants: { type: "string", default: "schema,no-measurement-index,no-primary-key,no-brin,no-index" },
  },
});
const ROUNDS = Number(values.rounds);
const chosen = values.variants.split(",");
for (const v of chosen)
  if (!(v in VARIANTS)) throw new Error(`unknown variant ${v}: ${Object.keys(VARIANTS).join(", ")}`);
const BATCHES = 50;
const PER_BATCH = 2_000;
const GATEWAY = "bench-gw";
const INSTANCE = "0123456789abcdef";

function batchOf(first: number): Reading[] {
  const out: Reading[] = [];
  for (let seq = first; seq < first + PER_BATCH; seq++) {
    out.push({
      gatewayId: GATEWAY,
      instance: INSTANCE,
      seq,
      sensorId: `bench-${seq % 100}`,
      metric: "temperature",
      value: 20 + (seq % 100) / 10,
      unit: "Cel",
      ts: 1_764_000_000_000 + seq,
      receivedAt: Date.now(),
      source: "mqtt:bench/flood",
    });
  }
  return out;
}

/** CPU-seconds of the database's backends per 100k readings, for one variant. */
async function once(sql: string): Promise<number> {
  const db = await createTestDatabase(PG_URL);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  // db.drop() ends the database's sessions (DROP DATABASE ... WITH (FORCE)); a client of this
  // pool still closing then reports 57P01, which must not end the whole run.
  pool.on("error", () => undefined);
  const probe = await db.pool.connect();
  try {
    await migrate(pool, silentLogger());
    if (sql) await pool.query(sql);
    const sink = new PostgresSink(pool, silentLogger());
    // The pool's connections open before the clock starts, as a running hub's are.
    const warm = await Promise.all([0, 1, 2, 3].map(() => pool.connect()));
    for (const c of warm) c.release();
    const backends = new BackendCpu(probe);
    await backends.start();
    const inFlight: Promise<unknown>[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const first = 1 + b * PER_BATCH;
      const readings = batchOf(first);
      // The sink writes the readings; the batch's messages only count in the gateways row.
      const batch = {
        v: 1,
        gatewayId: GATEWAY,
        instance: INSTANCE,
        firstSeq: first,
        lastSeq: first + PER_BATCH - 1,
        sentAt: Date.now(),
        messages: [],
      } as Batch;
      inFlight.push(sink.write({ gatewayId: GATEWAY, batch, readings, streamSeq: b + 1, bytes: 0 }));
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
    await backends.sample();
    return (backends.total() * 100_000) / (BATCHES * PER_BATCH);
  } finally {
    probe.release();
    await pool.end();
    await db.drop();
  }
}

const results = new Map<string, number[]>(chosen.map((v) => [v, []]));
for (let r = 0; r < ROUNDS; r++) for (const v of chosen) results.get(v)!.push(await once(VARIANTS[v]!));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = chosen.includes("schema") ? median(results.get("schema")!) : Number.NaN;
console.log("| variant | Postgres CPU-s per 100k readings (median) | rounds | saved beside the schema |");
console.log("| --- | --- | --- | --- |");
for (const [v, xs] of results) {
  const m = median(xs);
  const saved =
    Number.isNaN(base) || v === "schema" ? "" : `${(base - m).toFixed(2)} (${((1 - m / base) * 100).toFixed(0)} %)`;
  console.log(`| ${v} | ${m.toFixed(2)} | ${xs.map((x) => x.toFixed(2)).join(", ")} | ${saved} |`);
}
