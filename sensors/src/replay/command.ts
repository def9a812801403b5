import { readFileSync } from "node:fs";
import { ConfigError } from "@datalab/shared";
import { z } from "zod";
import { createEncoder, describeSpec, openOutput, OUTPUT_SPEC_HELP } from "../simulate/outputs/index";
import { formatForFile, REPLAY_FORMATS, type ReplayFormatName } from "./formats/index";
import { parseMetricSpec, type MetricMapping } from "./mapping";
import { ProgressLine, runClosing } from "../simulate/progress";
import { BrokerDrops, GatewayFlow, GatewayProgress } from "./pipeline-check";
import { replayFile, type ReplayOptions } from "./runner";
import type { ReplaySummary } from "./summary";
import { zoneMinutes } from "./time";
import { int, isoTime, num, outputSpec, parseFlags, speed } from "../simulate/flags";

export const REPLAY_FLAGS = {
  format: { type: "string" },
  sensor: { type: "string" },
  "sensor-prefix": { type: "string" },
  time: { type: "string" },
  interval: { type: "string" },
  start: { type: "string" },
  zone: { type: "string" },
  metric: { type: "string", multiple: true },
  speed: { type: "string" },
  limit: { type: "string" },
  delimiter: { type: "string" },
  headerless: { type: "boolean" },
  topic: { type: "string" },
  out: { type: "string" },
  gateway: { type: "string" },
  window: { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

export const REPLAY_HELP = `replay FILE: push a recorded data set through the pipeline, keeping its timestamps
  --format F           ${REPLAY_FORMATS.join(" | ")} (default: csv for *.csv, else intel-lab)
                       intel-lab: "date time epoch moteid temperature humidity light voltage",
                       sensor = moteid, time = date + time, metrics temperature (Cel),
                       humidity (%RH), light (lx), voltage (V)
  --sensor COLUMN      column with the sensor id (default: intel-lab moteid; csv: none, every
                       row is sensor <file name>)
  --sensor-prefix P    put P before every sensor id
  --time COLUMN[,COLUMN]  column(s) with the time, joined by a space: epoch s or ms, or
                       YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|±HH:MM]
  --interval SECONDS   or: no time column, each sensor's k-th row is at --start + k × SECONDS,
                       so the sensors of a file overlap as they ran (without --sensor: row k
                       of the file); --speed paces in file order (default for a csv without
                       --time: 1)
  --start ISO          time of the first row with --interval (default now)
  --zone ±HH:MM        zone of times written without one (default Z: UTC)
  --metric COLUMN=NAME[:UNIT]  a column to publish, as metric NAME (default the column's name)
                       in UNIT (default the SenML unit the name implies); repeatable.
                       Default: every column but the sensor and time ones
  --speed 1|N|max      1: the recorded pace; N: N times faster; max: as fast as the output
                       takes (default 1)
  --limit N            stop after N data rows
  --delimiter C        CSV field separator (default ,)
  --headerless         CSV without a header line: columns are named 1, 2, ...
  --out OUT            ${OUTPUT_SPEC_HELP}
                       (default mqtt, at DATALAB_MQTT_URL, QoS 1)
  --topic T            MQTT topic root: each row is one {"sensor",<metrics>...,"ts"} message
                       on T/<sensor id> (default sensors)
  --gateway URL        the gateway's HTTP address (e.g. http://127.0.0.1:9101; default
                       DATALAB_GATEWAY_URL; token: DATALAB_HTTP_TOKEN): at most --window
                       rows ahead of what it has committed, and an end-of-run check that it
                       committed every reading published
  --window N           rows published and not yet committed by the gateway (default 500: under
                       a stock Mosquitto's 1,000 messages queued per client)
  --quiet, -q          no progress line
 Bad lines are reported with their line numbers and skipped; a summary (rows read, published,
 skipped by reason with the first line numbers) ends the run. To MQTT, the run ends with a
 check: readings committed by the gateway (with --gateway) and messages the broker dropped
 (Mosquitto's $SYS/broker/publish/messages/dropped, read at its next $SYS update, up to 10 s).
 Exit status 0 when the file was replayed (even with skipped lines) and the check found no
 loss, 1 when the output failed or the check found a shortfall (named), 2 for a usage error;
 Ctrl-C stops it cleanly: the summary says "replay stopped", no check, exit 0.
 Without --gateway, --speed max outruns a gateway: Mosquitto drops QoS 1 messages queued for a
 lagging subscriber beyond max_queued_messages (default 1000), which the check then reports.
`;

const ReplayArgs = z.object({
  format: z.enum(REPLAY_FORMATS, { error: `expected ${REPLAY_FORMATS.join(" or ")}` }).optional(),
  sensor: z.string().min(1).optional(),
  "sensor-prefix": z.string().optional(),
  time: z
    .string()
    .transform((v) => v.split(",").map((c) => c.trim()))
    .optional(),
  interval: num(0).optional(),
  start: isoTime.optional(),
  zone: z
    .string()
    .default("Z")
    .transform((v, ctx) => {
      const m = zoneMinutes(v);
      if (Number.isNaN(m)) ctx.addIssue({ code: "custom", message: "expected Z or ±HH:MM" });
      return m;
    }),
  metric: z
    .array(z.string())
    .optional()
    .transform((specs, ctx): MetricMapping[] | undefined =>
      specs?.map((spec) => {
        const m = parseMetricSpec(spec);
        if ("problem" in m) ctx.addIssue({ code: "custom", message: m.problem });
        return "problem" in m ? { column: spec, metric: spec } : m;
      }),
    ),
  speed,
  limit: int(1).optional(),
  delimiter: z.string().length(1, "expected one character").optional(),
  headerless: z.boolean().default(false),
  topic: z.string().min(1).default("sensors"),
  out: outputSpec,
  gateway: z.url({ protocol: /^https?$/, error: "expected the gateway's http(s):// address" }).optional(),
  window: int(1).default(500),
  quiet: z.boolean().default(false),
});

export type ReplayArgs = z.infer<typeof ReplayArgs> & { file: string; formatName: ReplayFormatName };

export function parseReplayArgs(positionals: readonly string[], values: Record<string, unknown>): ReplayArgs {
  const a = parseFlags(ReplayArgs, values, [["time", "interval"]]);
  if (positionals.length !== 1) {
    throw new ConfigError([
      positionals.length === 0
        ? "replay needs a FILE"
        : `replay takes one FILE, got ${positionals.length}: ${positionals.join(" ")}`,
    ]);
  }
  const file = positionals[0]!;
  if (a.gateway !== undefined && a.out.kind !== "mqtt")
    throw new ConfigError(["--gateway: the gateway is checked for --out mqtt only"]);
  return { ...a, file, formatName: a.format ?? formatForFile(file) };
}

export function toReplayOptions(a: ReplayArgs, signal?: AbortSignal): ReplayOptions {
  const intervalMs =
    a.interval !== undefined ? a.interval * 1000 : a.time === undefined && a.formatName === "csv" ? 1000 : undefined;
  const o: ReplayOptions = {
    file: a.file,
    format: a.formatName,
    csv: { headerless: a.headerless, ...(a.delimiter ? { delimiter: a.delimiter } : {}) },
    mapping: {
      zoneOffsetMinutes: a.zone,
      startMs: a.start ?? Date.now(),
      ...(a.sensor !== undefined ? { sensor: a.sensor } : {}),
      ...(a["sensor-prefix"] !== undefined ? { sensorPrefix: a["sensor-prefix"] } : {}),
      ...(a.time !== undefined ? { time: a.time } : {}),
      ...(intervalMs !== undefined ? { intervalMs } : {}),
      ...(a.metric !== undefined ? { metrics: a.metric } : {}),
    },
    speed: a.speed,
  };
  if (a.limit !== undefined) o.limit = a.limit;
  if (signal) o.signal = signal;
  return o;
}

/** The first lines of each kind are shown as found; after that only the summary counts them. */
const PROBLEMS_SHOWN = 20;

export async function replayCommand(a: ReplayArgs, mqttUrl: string, signal: AbortSignal): Promise<number> {
  const o = toReplayOptions(a, signal);
  const encoder = createEncoder(a.out, { format: "multi", topicRoot: a.topic });
  // QoS 1 so the broker acknowledges every row: nothing is lost between here and the gateway.
  const output = await openOutput(a.out, { mqttUrl, qos: 1 });
  const progress = new ProgressLine();
  let shown = 0;
  o.onProblem = (p) => {
    if (shown++ < PROBLEMS_SHOWN) {
      progress.done();
      process.stderr.write(`${a.file}:${p.line}: skipped (${p.reason}): ${p.message}\n`);
    }
  };
  if (!a.quiet)
    o.onProgress = (p) => progress.update(`replay ${a.file}: rows published`, p.published, p.elapsedMs, p.fraction);
  let flow: GatewayFlow | undefined;
  let drops: BrokerDrops | undefined;
  try {
    if (a.gateway) {
      flow = new GatewayFlow(new GatewayProgress(a.gateway, httpToken()), a.window);
      await flow.start();
      const f = flow;
      o.admit = (messages, readings) => f.admit(messages, readings, signal);
    }
    if (a.out.kind === "mqtt") {
      drops = await BrokerDrops.watch(mqttUrl).catch((err: Error) => {
        process.stderr.write(
          `warning: the broker's $SYS counters cannot be read (${err.message}): its drops will not be checked\n`,
        );
        return undefined;
      });
    }
    const target = describeSpec(a.out) === "mqtt" ? output.description : describeSpec(a.out);
    const pacing = flow ? `, at most ${a.window} rows ahead of the gateway at ${a.gateway}` : "";
    process.stderr.write(`replaying ${a.file} (${a.formatName}) to ${target} at speed ${a.speed}${pacing}\n`);
    const summary = await runClosing(output, progress, () => replayFile(o, encoder, output));
    process.stderr.write(`${summary.format()}\n`);
    // A stop asked for is not a failure (pnpm would print one for any other code).
    if (summary.stopped) return 0;
    if (a.out.kind !== "mqtt") return 0;
    return (await endOfRunCheck(summary, flow, drops, signal)) ? 0 : 1;
  } finally {
    await drops?.close();
  }
}

/** The gateway's HTTP token, as the gateway reads it. */
function httpToken(): string | undefined {
  if (process.env.DATALAB_HTTP_TOKEN) return process.env.DATALAB_HTTP_TOKEN;
  const file = process.env.DATALAB_HTTP_TOKEN_FILE;
  return file ? readFileSync(file, "utf8").trim() : undefined;
}

/** How long the gateway may make no progress on what remains before the check gives up on it. */
const STALL_MS = 30_000;

/**
 * Published, committed by the gateway, dropped by the broker: prints one line each and
 * returns false when a reading is known to be missing. Readings the gateway committed beyond
 * those published are other sources' (the count is the gateway's total).
 */
async function endOfRunCheck(
  summary: ReplaySummary,
  flow: GatewayFlow | undefined,
  drops: BrokerDrops | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  let ok = true;
  const lines = [`check: ${summary.published} rows published (${summary.readings} readings)`];
  let committedAll = false;
  if (flow) {
    const committed = await flow.settle(summary.readings, STALL_MS, signal);
    committedAll = committed >= summary.readings;
    if (committedAll) lines.push(`  gateway: committed all ${summary.readings} readings`);
    else {
      ok = false;
      lines.push(
        `  SHORTFALL: the gateway committed ${committed} of ${summary.readings} readings ` +
          `(${summary.readings - committed} missing, no progress for ${STALL_MS / 1000} s)`,
      );
    }
  }
  if (drops) {
    const d = await drops.droppedSinceStart();
    const what = d?.total
      ? `messages during the replay (${d.dropped} since the broker started; its count before the replay had expired)`
      : `${d?.dropped} messages during the replay`;
    if (d === undefined)
      lines.push("  broker: drops unknown (no $SYS update within 15 s: sys_interval 0, or not Mosquitto)");
    else if (d.dropped === 0) lines.push("  broker: dropped no messages");
    else if (committedAll) lines.push(`  broker: dropped ${what}, none of this replay's (another client's)`);
    else {
      ok = false;
      lines.push(
        `  SHORTFALL: the broker dropped ${what} (max_queued_messages reached for a lagging subscriber): ` +
          "replay with --gateway to pace it, or raise the limit",
      );
    }
  }
  if (!flow) lines.push("  gateway: not checked (give --gateway URL to pace the replay and check what it committed)");
  if (!ok) lines.push("replay INCOMPLETE: readings were lost on the way");
  process.stderr.write(`${lines.join("\n")}\n`);
  return ok;
}
