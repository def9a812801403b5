/**
 * The analyst's notebooks run top to bottom (`jupyter nbconvert --execute`) against a
 * PostgreSQL filled by a replay of real fixtures (Suthaharan single-hop CSV, Intel lab lines)
 * written through the hub's own sinks. Needs Debian's jupyter-nbconvert, python3-ipykernel,
 * python3-pandas, python3-sqlalchemy, python3-psycopg2, python3-matplotlib, python3-pymongo.
 */
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import {
  createTestDatabase,
  MONGO_URL,
  runCommand,
  tempDir,
  uniqueId,
  waitFor,
  type TestDatabase,
  TIME_SCALE,
} from "@datalab/shared/testing";
import { createMongoSink, createPostgresSink, loadHubConfig, type Sink } from "@datalab/hub";
import { replayFixtures } from "./notebooks-fixture";

const NOTEBOOKS = fileURLToPath(new URL("../notebooks/", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../../../shared/fixtures", import.meta.url));
const APT =
  "apt-get install -y jupyter-nbconvert python3-ipykernel python3-pandas python3-sqlalchemy python3-psycopg2 " +
  "python3-matplotlib python3-pymongo";
const notebooks = readdirSync(NOTEBOOKS)
  .filter((f) => f.endsWith(".ipynb"))
  .sort();

interface Cell {
  cell_type: string;
  source: string[];
  outputs?: { output_type: string; text?: string[]; ename?: string; evalue?: string; data?: Record<string, unknown> }[];
  execution_count?: number | null;
}

let db: TestDatabase;
let replayed = 0;
const mongoDb = uniqueId("nb_");
let mongo: Sink | undefined;
/** Executed notebooks by name (`+mongo`: run with DATALAB_MONGO_URL set). */
const results = new Map<string, Cell[]>();
const outputDirs: string[] = [];

/** Execute one notebook; returns its cells as executed. */
async function execute(name: string, env: NodeJS.ProcessEnv): Promise<Cell[]> {
  const out = tempDir("datalab-nb-");
  outputDirs.push(out);
  const r = await runCommand(
    "jupyter",
    [
      "nbconvert",
      "--to",
      "notebook",
      "--execute",
      "--ExecutePreprocessor.timeout=120",
      "--output-dir",
      out,
      join(NOTEBOOKS, name),
    ],
    { env, timeoutMs: 150_000 },
  );
  expect(r.code, `${name} failed:\n${r.stderr.slice(-4000)}`).toBe(0);
  return (JSON.parse(readFileSync(join(out, name), "utf8")) as { cells: Cell[] }).cells;
}

function text(cells: Cell[]): string {
  return cells
    .flatMap((c) => c.outputs ?? [])
    .map((o) => (o.text ?? []).join("") + String((o.data?.["text/plain"] as string[] | undefined)?.join("") ?? ""))
    .join("\n");
}

function notebookEnv(withMongo: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATALAB_PG_URL: db.url,
    MPLBACKEND: "Agg",
    PYTHONDONTWRITEBYTECODE: "1",
  };
  delete env.DATALAB_MONGO_URL;
  delete env.DATALAB_NB_SENSOR;
  delete env.DATALAB_NB_METRIC;
  if (withMongo && MONGO_URL) Object.assign(env, { DATALAB_MONGO_URL: MONGO_URL, DATALAB_MONGO_DB: mongoDb });
  return env;
}

beforeAll(async () => {
  // Fail, not skip, when Jupyter is missing: CI must install the Debian packages.
  if (!spawnSync("sh", ["-c", "command -v jupyter"], { encoding: "utf8" }).stdout.trim()) {
    throw new Error(`jupyter is not installed; the notebooks test needs Debian's packages: ${APT}`);
  }
  db = await createTestDatabase();
  const sinks: Sink[] = [await createPostgresSink(db.pool, silentLogger())];
  if (MONGO_URL) {
    mongo = await createMongoSink(
      loadHubConfig({ env: { DATALAB_MONGO_URL: MONGO_URL, DATALAB_MONGO_DB: mongoDb, DATALAB_MONGO_POOL_SIZE: "2" } }),
      silentLogger(),
    );
    sinks.push(mongo!);
  }
  replayed = await replayFixtures(sinks, FIXTURES);
}, 120_000 * TIME_SCALE);

afterAll(async () => {
  const client = (mongo as unknown as { client?: { db(n: string): { dropDatabase(): Promise<unknown> } } } | undefined)
    ?.client;
  await client
    ?.db(mongoDb)
    .dropDatabase()
    .catch(() => undefined);
  await mongo?.close();
  await db?.drop();
  for (const d of outputDirs) rmSync(d, { recursive: true, force: true });
});

describe("notebooks (deploy/notebooks)", () => {
  it("are readable by any user (0644) and kept without outputs", () => {
    const files = readdirSync(NOTEBOOKS);
    expect(notebooks.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const st = statSync(join(NOTEBOOKS, f));
      if (st.isDirectory()) continue;
      expect((st.mode & 0o777).toString(8), f).toBe("644");
    }
    for (const f of notebooks) {
      const nb = JSON.parse(readFileSync(join(NOTEBOOKS, f), "utf8")) as { nbformat: number; cells: Cell[] };
      expect(nb.nbformat, f).toBe(4);
      for (const c of nb.cells.filter((x) => x.cell_type === "code")) {
        expect(c.outputs, f).toEqual([]);
        expect(c.execution_count, f).toBeNull();
      }
    }
  });

  it(
    "run top to bottom on the replayed fixtures, finding the dying battery and the jumps " +
      "(MongoDB join skipped without DATALAB_MONGO_URL)",
    async () => {
      expect(replayed).toBe(18_914 * 2 + 9 * 4);
      const plain = notebookEnv(false);
      // Two at a time: the machine has two cores, and each kernel mostly waits on its imports.
      // With MongoDB configured, 03 runs a second time with it (checked in the next test).
      const runs: [string, string, NodeJS.ProcessEnv][] = notebooks.map((n) => [n, n, plain]);
      if (MONGO_URL) runs.push(["03_anomalies.ipynb+mongo", "03_anomalies.ipynb", notebookEnv(true)]);
      for (let i = 0; i < runs.length; i += 2) {
        const pair = runs.slice(i, i + 2);
        const done = await Promise.all(pair.map(([, file, env]) => execute(file, env)));
        pair.forEach(([key], k) => results.set(key, done[k]!));
      }
      for (const [name, cells] of results) {
        const errors = cells.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "error");
        expect(
          errors.map((e) => `${e.ename}: ${e.evalue}`),
          name,
        ).toEqual([]);
        // Every plot rendered.
        expect(
          cells.flatMap((c) => c.outputs ?? []).some((o) => o.data?.["image/png"]),
          name,
        ).toBe(true);
      }
      const history = text(results.get("01_sensor_history.ipynb")!);
      expect(history).toMatch(/single-hop-mote-\d: \d+ readings/);
      expect(history).toMatch(/buckets of 15 min; pandas and PostgreSQL agree/);
      const anomalies = text(results.get("03_anomalies.ipynb")!);
      // The Intel lab's real faulty reading: 122.153 °C and -3.9 %RH at 2.03 V.
      expect(anomalies).toMatch(/dying-battery readings: 1\n/);
      expect(anomalies).toContain("intel-lab-mote-1 at 2004-03-31 03:38:15");
      expect(anomalies).toContain("2.03 V, 122.15 °C, -3.92 %RH");
      const flagged = Number(/robust z-score: (\d+) readings flagged/.exec(anomalies)?.[1]);
      expect(flagged).toBeGreaterThan(0);
      expect(anomalies).toContain("DATALAB_MONGO_URL is not set: skipping the raw-message join");
    },
    240_000 * TIME_SCALE,
  );

  it.skipIf(!MONGO_URL)("join flagged readings with their raw messages in MongoDB (needs DATALAB_MONGO_URL)", () => {
    const cells = results.get("03_anomalies.ipynb+mongo");
    expect(cells, "03_anomalies.ipynb was not run with MongoDB").toBeDefined();
    const errors = cells!.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "error");
    expect(errors.map((e) => `${e.ename}: ${e.evalue}`)).toEqual([]);
    const out = text(cells!);
    const m = /raw messages found in MongoDB: (\d+) of (\d+) in ([\d.]+) s/.exec(out);
    expect(m, out.slice(-2000)).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![1])).toBeGreaterThan(1);
    // The default query's join, on FerretDB too (exact _id lookups; a range filter scans there).
    expect(Number(m![3])).toBeLessThan(10);
    // The Intel lab line exactly as recorded, and Suthaharan CSV lines with their label column.
    expect(out).toContain("2004-03-31 03:38:15.757551 2 1 122.153 -3.91901 11.04 2.03397");
    expect(out).toMatch(/via replay:suthaharan\/single-hop\.csv: \d+,[14],1,[\d.]+,[\d.]+,1/);
  });

  it("default to the hub's database when DATALAB_PG_URL is unset", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: NOTEBOOKS, PYTHONDONTWRITEBYTECODE: "1" };
    delete env.DATALAB_PG_URL;
    // The interpreter Jupyter runs the notebooks with (Debian's, with pandas).
    const r = await runCommand("/usr/bin/python3", ["-c", "import datalab; print(datalab.pg_url())"], { env });
    expect(r.code, r.stderr).toBe(0);
    const hub = new URL(loadHubConfig({ env: {} }).pgUrl);
    expect(new URL(r.stdout.trim().replace("postgresql+psycopg2://", "postgres://")).pathname).toBe(hub.pathname);
  });

  it.skipIf(!MONGO_URL)(
    "the MongoDB sink creates the lookup indexes at start, before any write, and again harmlessly " +
      "(needs DATALAB_MONGO_URL)",
    async () => {
      const name = uniqueId("nbidx_");
      const config = loadHubConfig({
        env: { DATALAB_MONGO_URL: MONGO_URL!, DATALAB_MONGO_DB: name, DATALAB_MONGO_POOL_SIZE: "1" },
      });
      const first = (await createMongoSink(config, silentLogger())) as Sink & {
        collection: { indexes(): Promise<{ name?: string; key: Record<string, number> }[]> };
        ensureIndexes(): Promise<void>;
      };
      try {
        await waitFor(
          async () => (await first.collection.indexes().catch(() => [])).some((i) => i.name === "gateway_seq"),
          "the gateway_seq index, with no write",
        );
        const idx = (await first.collection.indexes()).find((i) => i.name === "gateway_seq")!;
        expect(idx.key).toEqual({ gatewayId: 1, instance: 1, firstSeq: 1 });
        const second = (await createMongoSink(config, silentLogger())) as typeof first;
        await second.ensureIndexes();
        await second.close();
        expect((await first.collection.indexes()).map((i) => i.name).sort()).toEqual([
          "_id_",
          "gateway_seq",
          "gateway_time",
          "sensor_time",
          "time",
        ]);
      } finally {
        await (first as unknown as { client: { db(n: string): { dropDatabase(): Promise<unknown> } } }).client
          .db(name)
          .dropDatabase()
          .catch(() => undefined);
        await first.close();
      }
    },
  );

  it.skipIf(!MONGO_URL)(
    "raw_messages survives duplicate keys and gaps: a key given twice is looked up once, " +
      "a reading whose message is missing is found=False (needs DATALAB_MONGO_URL)",
    async () => {
      const client = (
        mongo as unknown as {
          client: {
            db(n: string): { collection(c: string): { deleteOne(f: object): Promise<{ deletedCount: number }> } };
          };
        }
      ).client;
      // The message holding readings 201 and 202 of the single-hop replay goes missing.
      expect(
        (await client.db(mongoDb).collection("messages").deleteOne({ _id: "replay-suthaharan:single-hop-csv:201" }))
          .deletedCount,
      ).toBe(1);
      const script = [
        "import pandas as pd, datalab as dl",
        "rows = pd.DataFrame({'gateway_id': ['replay-suthaharan'] * 4, 'instance': ['single-hop-csv'] * 4, " +
          "'seq': [102, 102, 202, 201]})",
        "raw = dl.raw_messages(dl.mongo_db(), rows)",
        "print(raw[['seq', 'found']].to_json(orient='records'))",
      ].join("\n");
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        PYTHONPATH: NOTEBOOKS,
        PYTHONDONTWRITEBYTECODE: "1",
        DATALAB_MONGO_URL: MONGO_URL,
        DATALAB_MONGO_DB: mongoDb,
      };
      const r = await runCommand("/usr/bin/python3", ["-c", script], { env, timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim())).toEqual([
        { seq: 102, found: true },
        { seq: 201, found: false },
        { seq: 202, found: false },
      ]);
    },
  );
});
