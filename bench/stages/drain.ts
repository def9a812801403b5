import { spawnSync } from "node:child_process";
import { copyFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "@datalab/shared";
import { createTestDatabase, deleteStreams, tempDir, uniqueId, waitFor } from "@datalab/shared/testing";
import { Outbox, type AcceptedMessage } from "@datalab/gateway";
import { migrate } from "@datalab/hub";
import { median } from "../lib/proc";
import { startGateway, startHub, type BenchContext, type Figure } from "./common";

const PER_MESSAGE = 3;

/**
 * Drain: a backlog already in the outbox → NATS → hub → PostgreSQL, beside `psql \copy` of
 * the same rows into the same table (same indexes) in the same run.
 */
export async function drainStage(ctx: BenchContext): Promise<Figure[]> {
  const n = ctx.quick ? 120_000 : 1_000_002;
  const dataDir = tempDir("datalab-bench-drain-");
  const t = Date.UTC(2026, 0, 1);

  // 1. The backlog: written straight into the gateway's outbox, as an outage would leave it.
  const outbox = Outbox.open(join(dataDir, "outbox.db"), { logger: silentLogger(), synchronous: "NORMAL" });
  const chunk: AcceptedMessage[] = [];
  for (let i = 0; i < n / PER_MESSAGE; i++) {
    const ts = t + i * 1000;
    const sensorId = `drain-${i % 100}`;
    chunk.push({
      source: "mqtt:bench",
      receivedAt: ts,
      payload: Buffer.from(`{"sensor":"${sensorId}","temperature":21.5,"humidity":40,"battery":3.1,"ts":${ts}}`),
      readings: [
        { sensorId, metric: "temperature", value: 21.5, unit: "Cel", ts },
        { sensorId, metric: "humidity", value: 40, unit: "%RH", ts },
        { sensorId, metric: "battery", value: 3.1, unit: "V", ts },
      ],
    });
    if (chunk.length === 5_000) outbox.commit(chunk.splice(0));
  }
  if (chunk.length) outbox.commit(chunk.splice(0));
  const instance = outbox.instance;
  outbox.close();
  ctx.log(`drain: backlog of ${n} readings written`);

  // 2. The same rows as CSV, for the limit: `psql \copy` into a fresh readings table.
  const csv = join(dataDir, "rows.csv");
  const lines: string[] = [];
  for (let i = 0; i < n / PER_MESSAGE; i++) {
    const ts = new Date(t + i * 1000).toISOString();
    const s = `drain-${i % 100}`;
    const base = i * PER_MESSAGE + 1;
    lines.push(
      `gw,${instance},${base},${s},temperature,${ts},21.5,Cel,${ts},mqtt:bench,t`,
      `gw,${instance},${base + 1},${s},humidity,${ts},40,%RH,${ts},mqtt:bench,t`,
      `gw,${instance},${base + 2},${s},battery,${ts},3.1,V,${ts},mqtt:bench,t`,
    );
  }
  writeFileSync(csv, `${lines.join("\n")}\n`);

  // 3. Rounds, alternating the limit and the pipeline (shared machines drift; ratios taken
  //    side by side hold): \copy into a fresh table, then the pipeline on a fresh copy of the
  //    backlog, its own stream and its own database, timed from the gateway answering to
  //    the last row.
  const rounds = ctx.quick ? 1 : 3;
  const copyRates: number[] = [];
  const rates: number[] = [];
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const copyRate = await copyOnce(ctx.pgUrl, csv, n);
    const rate = await pipelineOnce(ctx, dataDir, round, n);
    copyRates.push(copyRate);
    rates.push(rate);
    ratios.push(rate / copyRate);
    ctx.log(
      `drain round ${round}: psql \\copy ${Math.round(copyRate)} rows/s, ` +
        `pipeline ${Math.round(rate)} readings/s (${(rate / copyRate).toFixed(2)})`,
    );
  }
  const ratio = median(ratios);
  return [
    {
      stage: "Drain outbox → NATS → hub → Postgres",
      figure: "readings/s",
      value: median(rates),
      unit: "readings/s",
      limit: { what: "psql \\copy, same rows, same table", value: median(copyRates), unit: "rows/s" },
      target: "≥ 0.5× limit",
      met: ratio >= 0.5,
      note:
        `${n.toLocaleString("en-US")}-reading backlog, ${PER_MESSAGE} readings per message, ` +
        "timed from the gateway answering to the last row committed; " +
        `medians of ${rounds} alternating round(s), median ratio ${ratio.toFixed(2)} ` +
        `(rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")})`,
    },
  ];
}

/** `psql \copy` of the CSV into a fresh `readings` table (same schema, same indexes). */
async function copyOnce(pgUrl: string, csv: string, n: number): Promise<number> {
  const copyDb = await createTestDatabase(pgUrl);
  try {
    await migrate(copyDb.pool, silentLogger());
    const c0 = performance.now();
    const r = spawnSync(
      "psql",
      [
        copyDb.url,
        "-v",
        "ON_ERROR_STOP=1",
        "-qc",
        "\\copy readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, " +
          "received_at, source, sensor_time) " +
          `FROM '${csv}' WITH (FORMAT csv)`,
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`psql \\copy failed: ${r.stderr}`);
    return n / ((performance.now() - c0) / 1000);
  } finally {
    await copyDb.drop();
  }
}

/** Hub first, then a gateway on a copy of the backlog; readings/s until the last row. */
async function pipelineOnce(ctx: BenchContext, backlogDir: string, round: number, n: number): Promise<number> {
  const prefix = uniqueId(`bd${round}`);
  const dataDir = tempDir("datalab-bench-drain-gw-");
  copyFileSync(join(backlogDir, "outbox.db"), join(dataDir, "outbox.db"));
  const db = await createTestDatabase(ctx.pgUrl);
  const hub = await startHub({ DATALAB_NATS_URL: ctx.natsUrl, DATALAB_PG_URL: db.url, DATALAB_NATS_PREFIX: prefix });
  const count = async () =>
    Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n);
  try {
    const gw = await startGateway(
      {
        DATALAB_MQTT_URL: ctx.mqttUrl,
        DATALAB_NATS_URL: ctx.natsUrl,
        DATALAB_NATS_PREFIX: prefix,
        DATALAB_MQTT_ENABLED: "false",
      },
      dataDir,
    );
    // From the moment the gateway answers (its start-up is not drain time) to the last row.
    const t0 = performance.now();
    try {
      await waitFor(async () => (await count()) >= n, `${n} rows in Postgres`, 900_000, 250);
      return n / ((performance.now() - t0) / 1000);
    } finally {
      await gw.stop();
    }
  } finally {
    await hub.stop();
    await deleteStreams(prefix, ctx.natsUrl);
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
