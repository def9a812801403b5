import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PoolClient } from "pg";
import { createTestDatabase, tempDir, uniqueId, waitFor, type MosquittoBroker } from "@datalab/shared/testing";
import { startFlood } from "../lib/flood";
import { BackendCpu } from "../lib/pg-backends";
import { cpuSeconds, median, ROOT, startProcess } from "../lib/proc";
import type { BenchContext, Figure } from "./common";

/**
 * Telegraf as a user who must not lose a reading sets it up: a persistent session, so that a
 * QoS 1 message is acknowledged to the broker only once its batch is in Postgres; up to five
 * batches read ahead while one is written; a buffer that holds the whole flood; rows flushed
 * within a second, as a live dashboard wants them (Telegraf's default waits up to 10 s).
 */
export const TELEGRAF_SETTINGS = { flushInterval: 1, batchSize: 1_000, maxUndelivered: 5_000 } as const;

/** Telegraf reports each write in its debug log: the cheap signal of the end, confirmed by count(*). */
const WROTE = /Wrote batch of (\d+) metrics/g;
const DROPPED = /(\d+) metrics have been dropped/g;

export interface Telegraf {
  bin: string;
  version: string;
}

/** The binary: DATALAB_BENCH_TELEGRAF, else the one scripts/telegraf.sh builds; or why there is none. */
export function findTelegraf(): Telegraf | { missing: string } {
  const named = process.env.DATALAB_BENCH_TELEGRAF;
  const bin = named || join(ROOT, ".cache/telegraf/telegraf");
  if (!existsSync(bin)) {
    return {
      missing: named
        ? `DATALAB_BENCH_TELEGRAF=${named} does not exist`
        : `DATALAB_BENCH_TELEGRAF unset and no ${bin} (bash scripts/telegraf.sh builds it)`,
    };
  }
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.status !== 0) {
    const why = r.error?.message ?? (r.stderr.trim() || `exit status ${r.status}`);
    return { missing: `${bin} --version failed (${why})` };
  }
  return { bin, version: r.stdout.trim() };
}

export interface PeerRound {
  /** Rows landed per second, first publish to the last row. */
  rate: number;
  /** Rows in Postgres at the end, and how many distinct messages (by their `ts`) they hold. */
  rows: number;
  distinct: number;
  /** Metrics Telegraf said it dropped from its buffer. */
  dropped: number;
  /** Seconds from the first publish to the last PUBACK of the flood. */
  published: number;
  /** True when the rows stopped short of the flood and the round ended on no more writes. */
  stalled: boolean;
  cpu: { telegraf: number; "Postgres backends": number; mosquitto: number };
}

/** The config the stage writes for one round: the no-loss settings above, all else Telegraf's defaults. */
function telegrafConfig(o: { brokerUrl: string; topic: string; clientId: string; pgUrl: string; n: number }): string {
  const broker = new URL(o.brokerUrl);
  const pg = new URL(o.pgUrl);
  // TLS is off on the hub's connection (node-postgres's default); pgx would prefer it.
  pg.searchParams.set("sslmode", "disable");
  const s = TELEGRAF_SETTINGS;
  return `[agent]
  flush_interval = "${s.flushInterval}s"
  metric_batch_size = ${s.batchSize}
  metric_buffer_limit = ${Math.max(o.n, 10_000)}
  debug = true

[[inputs.mqtt_consumer]]
  servers = ["tcp://${broker.hostname}:${broker.port}"]
  topics = ["${o.topic}/#"]
  qos = 1
  persistent_session = true
  client_id = "${o.clientId}"
  max_undelivered_messages = ${s.maxUndelivered}
  data_format = "json"
  tag_keys = ["sensor"]
  json_time_key = "ts"
  json_time_format = "unix_ms"

[[outputs.postgresql]]
  connection = "${pg.toString()}"
${indexed() ? `  create_templates = [${INDEXED_TABLE.map((t) => `'${t}'`).join(", ")}]\n` : ""}`;
}

/**
 * DATALAB_BENCH_TELEGRAF_INDEXED=1 has Telegraf's table indexed for the analysts' two questions
 * as readings is (hub/docs/storage.md): a B-tree for one sensor over time, BRIN for time
 * ranges. Not unique: Telegraf has no key that a redelivery would keep.
 */
const INDEXED_TABLE = [
  "CREATE TABLE {{ .table }} ({{ .columns }})",
  'CREATE INDEX ON {{ .table }} ("sensor", "time")',
  'CREATE INDEX ON {{ .table }} USING brin ("time") WITH (pages_per_range = 32)',
];

function indexed(): boolean {
  return process.env.DATALAB_BENCH_TELEGRAF_INDEXED === "1";
}

/**
 * One round of the peer: a fresh database and a fresh Telegraf subscribed with its own client
 * id, the same flood from the same broker, timed from the first publish until the last row is
 * in Postgres. A round whose rows stop short ends once nothing is written for a while, and
 * says how many rows landed.
 */
export async function telegrafOnce(
  ctx: BenchContext,
  telegraf: Telegraf,
  broker: MosquittoBroker,
  n: number,
): Promise<PeerRound> {
  const topic = `bench/${uniqueId("tg")}`;
  const dir = tempDir("datalab-bench-telegraf-");
  const db = await createTestDatabase(ctx.pgUrl);
  let client: PoolClient | undefined;
  try {
    const conf = join(dir, "telegraf.conf");
    const clientId = uniqueId("datalab-bench-telegraf-");
    writeFileSync(conf, telegrafConfig({ brokerUrl: broker.url, topic, clientId, pgUrl: db.url, n }));
    const tg = startProcess(telegraf.bin, ["--config", conf]);
    try {
      let ready = false;
      let written = 0;
      let dropped = 0;
      let lastWriteAt = Number.NaN;
      let exit: string | undefined;
      let partial = "";
      tg.proc.stderr?.on("data", (d: Buffer) => {
        const text = partial + d.toString();
        const cut = text.lastIndexOf("\n") + 1;
        partial = text.slice(cut);
        const lines = text.slice(0, cut);
        // The first buffer report comes after the inputs started, so the subscription is made.
        if (lines.includes("Buffer fullness")) ready = true;
        for (const m of lines.matchAll(WROTE)) {
          written += Number(m[1]);
          lastWriteAt = performance.now();
        }
        for (const m of lines.matchAll(DROPPED)) dropped += Number(m[1]);
      });
      tg.proc.once("exit", (code, signal) => (exit = `exited (code ${code}, signal ${signal})`));
      const alive = () => {
        if (exit) throw new Error(`Telegraf ${exit}: ${tg.stderrTail()}`);
      };
      await waitFor(
        () => {
          alive();
          return ready;
        },
        "Telegraf to subscribe",
        60_000,
        50,
      );

      client = await db.pool.connect();
      const c = client;
      const rows = async () =>
        Number(
          (await c.query<{ n: string }>("SELECT count(*) AS n FROM mqtt_consumer").catch(() => undefined))?.rows[0]
            ?.n ?? 0,
        );
      const backends = new BackendCpu(c);
      await backends.start();
      const t0cpu = cpuSeconds(tg.pid);
      const m0 = cpuSeconds(broker.pid);

      const fl = startFlood(broker.url, topic, n);
      const t0 = fl.t0;
      // Nothing written for this long after the flood is out: what has not landed will not.
      const quietMs = 3_000 * TELEGRAF_SETTINGS.flushInterval + 2_000;
      let stalled = false;
      let polls = 0;
      await waitFor(
        async () => {
          alive();
          if (polls++ % 10 === 0) await backends.sample();
          if (written >= n && (await rows()) >= n) return true;
          if (Number.isNaN(fl.publishedAt)) return false;
          stalled = performance.now() - Math.max(fl.publishedAt, Number.isNaN(lastWriteAt) ? 0 : lastWriteAt) > quietMs;
          return stalled;
        },
        `${n} rows from Telegraf in Postgres`,
        300_000,
        25,
      );
      const end = stalled ? lastWriteAt : performance.now();
      await fl.done;
      await backends.sample();
      const cpu = {
        telegraf: cpuSeconds(tg.pid) - t0cpu,
        "Postgres backends": backends.total(),
        mosquitto: cpuSeconds(broker.pid) - m0,
      };
      // After the CPU is read: each message once, told apart by its `ts`.
      const check = await c
        .query<{ rows: string; distinct: string }>(
          'SELECT count(*) AS rows, count(DISTINCT "time") AS distinct FROM mqtt_consumer',
        )
        .catch(() => undefined);
      const landed = Number(check?.rows[0]?.rows ?? 0);
      return {
        rate: Number.isNaN(end) ? 0 : landed / ((end - t0) / 1000),
        rows: landed,
        distinct: Number(check?.rows[0]?.distinct ?? 0),
        dropped,
        published: (fl.publishedAt - t0) / 1000,
        stalled,
        cpu,
      };
    } finally {
      await tg.stop();
    }
  } finally {
    client?.release();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a round of the peer lost, or "" when every message landed exactly once. */
export function peerLoss(r: PeerRound, n: number): string {
  const parts: string[] = [];
  if (r.rows < n) parts.push(`${(n - r.rows).toLocaleString("en-US")} rows missing`);
  if (r.rows > r.distinct) parts.push(`${(r.rows - r.distinct).toLocaleString("en-US")} duplicates`);
  if (r.distinct < Math.min(r.rows, n) && r.rows >= n) parts.push(`only ${r.distinct} distinct messages`);
  if (r.dropped > 0) parts.push(`${r.dropped} dropped from Telegraf's buffer`);
  return parts.join(", ");
}

/**
 * The peer's figures: its rate beside mosquitto_sub's, its CPU (Telegraf and its Postgres
 * backends), and the path's whole CPU as a share of it, the median of per-round ratios.
 */
export function peerFigures(o: {
  n: number;
  telegraf: Telegraf;
  rounds: readonly PeerRound[];
  /** The path's whole CPU-s and rate in the same rounds, and mosquitto_sub's rates. */
  pathCpu: readonly number[];
  pathRates: readonly number[];
  subRates: number[];
}): Figure[] {
  const { n, rounds } = o;
  const per100k = (s: number) => (s * 100_000) / n;
  const total = rounds.map((r) => per100k(r.cpu.telegraf + r.cpu["Postgres backends"]));
  const cpuRatios = rounds.map((_, i) => per100k(o.pathCpu[i]!) / total[i]!);
  const rateRatios = rounds.map((r, i) => o.pathRates[i]! / r.rate);
  const cpuRatio = median(cpuRatios);
  const list = (xs: readonly number[]) => xs.map((x) => x.toFixed(2)).join(", ");
  const losses = rounds.map((r, i) => [i + 1, peerLoss(r, n)] as const).filter(([, l]) => l);
  const verified = losses.length
    ? `LOST in ${losses.map(([i, l]) => `round ${i}: ${l}`).join("; ")}`
    : `every round: all ${n.toLocaleString("en-US")} messages in Postgres, each once`;
  const s = TELEGRAF_SETTINGS;
  const settings =
    `${o.telegraf.version}, mqtt_consumer (QoS 1, persistent_session = true, a fixed client_id, ` +
    `max_undelivered_messages = ${s.maxUndelivered}, json with tag_keys = ["sensor"], ts as unix_ms) → ` +
    (indexed()
      ? "postgresql output (one connection, COPY into a table it creates with a B-tree on (sensor, time) " +
        "and BRIN on time, DATALAB_BENCH_TELEGRAF_INDEXED; sslmode=disable); "
      : "postgresql output (its defaults: one connection, COPY into a table it creates, no index; sslmode=disable); ") +
    `agent flush_interval = ${s.flushInterval}s, metric_batch_size = ${s.batchSize}, ` +
    `metric_buffer_limit = ${Math.max(n, 10_000)}`;
  const breakdown = (["telegraf", "Postgres backends", "mosquitto"] as const)
    .map((p) => `${p} ${median(rounds.map((r) => per100k(r.cpu[p]))).toFixed(2)}`)
    .join(", ");
  const stage = "Peer, same flood and broker: Telegraf mqtt_consumer → postgresql (no-loss settings)";
  return [
    {
      stage,
      figure: "rows/s",
      value: median(rounds.map((r) => r.rate)),
      unit: "rows/s",
      limit: { what: "mosquitto_sub, same flood", value: median(o.subRates), unit: "msg/s" },
      note:
        `${settings}; first publish to last row (confirmed by count(*)); ${verified}; ` +
        `medians of ${rounds.length} rounds alternating with the path; path rate / Telegraf rate, ` +
        `median of rounds ${median(rateRatios).toFixed(2)} (rounds: ${list(rateRatios)})`,
    },
    {
      stage,
      figure: "CPU-s per 100k rows",
      value: median(total),
      unit: "CPU-s",
      note:
        `Telegraf + its Postgres backends, medians: ${breakdown} (Mosquitto is not in the sum, as for the path); ` +
        `rounds: ${list(total)}`,
    },
    {
      stage,
      figure: "whole path CPU / Telegraf CPU",
      value: cpuRatio,
      unit: "×",
      limit: { what: "Telegraf, same flood, same run", value: median(total), unit: "CPU-s per 100k" },
      target: "< 1× (less CPU than the best peer)",
      met: cpuRatio < 1,
      note:
        `median of per-round ratios (rounds: ${list(cpuRatios)}); the path's whole CPU in those rounds: ` +
        `${list(o.pathCpu.map(per100k))} CPU-s per 100k`,
    },
  ];
}
