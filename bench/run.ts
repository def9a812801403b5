/**
 * `pnpm bench [--quick] [--stages ingest,drain,latency,e2e,parsers,idle]`: every stage measured
 * beside the limit it is compared with, in one run on one machine. Prints a table and writes
 * JSON to bench/results/.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { usageProblem } from "@datalab/shared";
import { NATS_URL, PG_URL, startMosquitto } from "@datalab/shared/testing";
import { ROOT } from "./lib/proc";
import { GATEWAY_NODE_FLAGS, type BenchContext, type Figure } from "./stages/common";
import { drainStage } from "./stages/drain";
import { e2eStage } from "./stages/e2e";
import { idleStage } from "./stages/idle";
import { ingestStage } from "./stages/ingest";
import { latencyStage } from "./stages/latency";
import { parsersStage } from "./stages/parsers";

const STAGES: Record<string, (ctx: BenchContext) => Promise<Figure[]>> = {
  parsers: parsersStage,
  ingest: ingestStage,
  drain: drainStage,
  latency: latencyStage,
  e2e: e2eStage,
  idle: idleStage,
};

let values: { quick?: boolean; stages?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { quick: { type: "boolean" }, stages: { type: "string" }, help: { type: "boolean", short: "h" } },
  }));
} catch (err) {
  process.stderr.write(`${usageProblem(err) ?? String(err)} (pnpm bench --help lists the options)\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(
    `Usage: pnpm bench [--quick] [--stages ${Object.keys(STAGES).join(",")}]\n\n` +
      "--quick runs smaller sizes (under two minutes); " +
      "the default sizes are the full ones (1,000,000-reading drain).\n" +
      "Needs Mosquitto, NATS and PostgreSQL at DATALAB_MQTT_URL, DATALAB_NATS_URL, DATALAB_PG_URL.\n",
  );
  process.exit(0);
}
const chosen = (values.stages ?? Object.keys(STAGES).join(",")).split(",").map((s) => s.trim());
for (const s of chosen) {
  if (!STAGES[s]) {
    process.stderr.write(`unknown stage "${s}" (known: ${Object.keys(STAGES).join(", ")})\n`);
    process.exit(2);
  }
}

// A broker of the bench's own, so its limits are known: Mosquitto's default queue of 1,000
// messages per client drops QoS 1 messages for any subscriber that lags a burst by more
// than that, which would measure the broker's queue rather than the gateway. Both the
// limit (mosquitto_sub) and the gateway are measured against this one broker.
const broker = await startMosquitto();
if (process.env.DATALAB_BENCH_GATEWAY !== "tsx") {
  // Measure what a Pi runs: the bundle, rebuilt from the sources of this checkout.
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "gateway/scripts/bundle.ts")], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`bundling the gateway failed: ${r.stderr}`);
}
if (process.env.DATALAB_BENCH_HUB !== "tsx") {
  // The hub as its image runs it: bundled by deploy/docker/bundle.mjs, here into hub/dist/.
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "deploy/docker/bundle.mjs"), "hub", join(ROOT, "hub"), "--inline-npm"],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`bundling the hub failed: ${r.stderr}`);
}
process.once("exit", () => void broker.stop());

const ctx: BenchContext = {
  quick: values.quick ?? false,
  mqttUrl: broker.url,
  natsUrl: NATS_URL,
  pgUrl: PG_URL,
  log: (m) => process.stderr.write(`[bench] ${m}\n`),
};

const benchGateway = process.env.DATALAB_BENCH_GATEWAY ?? "";
const gatewayRun =
  benchGateway === "tsx"
    ? "gateway via tsx"
    : benchGateway
      ? `gateway from the release ${benchGateway} (its bin/node, dist/cli.mjs), node ${GATEWAY_NODE_FLAGS.join(" ")}`
      : `gateway bundled (gateway/dist/cli.mjs), node ${GATEWAY_NODE_FLAGS.join(" ")}`;
const machine =
  `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
  `Node ${process.version}, ${process.platform}/${process.arch}`;
const started = Date.now();
const figures: Figure[] = [];
const failures: { stage: string; error: string }[] = [];
for (const s of chosen) {
  ctx.log(`stage ${s}…`);
  try {
    figures.push(...(await STAGES[s]!(ctx)));
  } catch (err) {
    failures.push({ stage: s, error: (err as Error).message });
    ctx.log(`stage ${s} failed: ${(err as Error).message}`);
  }
}

const fmt = (v: number) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(v >= 10 ? 1 : 2));
const rows = figures.map((f) => ({
  stage: f.stage,
  figure: f.figure,
  value: `${fmt(f.value)} ${f.unit}`,
  limit: f.limit ? `${fmt(f.limit.value)} ${f.limit.unit} (${f.limit.what})` : "",
  // A ratio where the figure and its limit measure the same thing: a rate, or memory.
  ratio: f.limit && (/\/s$/.test(f.unit) || f.unit === "MB") ? (f.value / f.limit.value).toFixed(2) : "",
  target: f.target ?? "",
  met: f.met === undefined ? "" : f.met ? "yes" : "NO",
}));
process.stdout.write(
  `\nWireless Sensor DataLab benchmark — ${new Date(started).toISOString()}${ctx.quick ? " (quick)" : ""}\n` +
    `machine: ${machine}\n${gatewayRun}\n\n`,
);
const header = ["stage", "figure", "value", "limit", "ratio", "target", "met"] as const;
const widths = header.map((h) => Math.max(h.length, ...rows.map((r) => r[h].length)));
const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
process.stdout.write(
  `${line(header)}\n${line(widths.map((w) => "-".repeat(w)))}\n` +
    `${rows.map((r) => line(header.map((h) => r[h]))).join("\n")}\n`,
);
for (const f of figures.filter((x) => x.note)) process.stdout.write(`  - ${f.stage} / ${f.figure}: ${f.note}\n`);
for (const f of failures) process.stdout.write(`  ! stage ${f.stage} failed: ${f.error}\n`);
process.stdout.write(`\n${((Date.now() - started) / 1000).toFixed(0)} s in all\n`);

const dir = join(ROOT, "bench/results");
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date(started).toISOString().replace(/[:.]/g, "-")}${ctx.quick ? "-quick" : ""}.json`);
writeFileSync(
  file,
  JSON.stringify(
    { started: new Date(started).toISOString(), quick: ctx.quick, machine, gatewayRun, figures, failures },
    null,
    2,
  ),
);
process.stdout.write(`results: ${file}\n`);
process.exit(failures.length > 0 ? 1 : 0);
