import { ConfigError } from "@datalab/shared";
import { z } from "zod";
import { createEncoder, describeSpec, openOutput, OUTPUT_SPEC_HELP } from "../simulate/outputs/index";
import { formatForFile, REPLAY_FORMATS, type ReplayFormatName } from "./formats/index";
import { parseMetricSpec, type MetricMapping } from "./mapping";
import { ProgressLine, runClosing } from "../simulate/progress";
import { replayFile, type ReplayOptions } from "./runner";
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
  --quiet, -q          no progress line
 Bad lines are reported with their line numbers and skipped; a summary (rows read, published,
 skipped by reason with the first line numbers) ends the run. Exit status 0 when the file was
 replayed (even with skipped lines), 1 when the output failed, 2 for a usage error, 130 when
 stopped by Ctrl-C (the summary still prints).
 At --speed max the broker takes rows faster than a gateway may read them: Mosquitto drops QoS 1
 messages queued for a lagging subscriber beyond max_queued_messages (default 1000; its log says
 "Outgoing messages are being dropped"). Raise that limit, or pace the replay with --speed N.
`;

const ReplayArgs = z
  .object({
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
    quiet: z.boolean().default(false),
  });

export type ReplayArgs = z.infer<typeof ReplayArgs> & { file: string; formatName: ReplayFormatName };

export function parseReplayArgs(positionals: readonly string[], values: Record<string, unknown>): ReplayArgs {
  const a = parseFlags(ReplayArgs, values, [["time", "interval"]]);
  if (positionals.length !== 1) {
    throw new ConfigError([positionals.length === 0 ? "replay needs a FILE" : `replay takes one FILE, got ${positionals.length}: ${positionals.join(" ")}`]);
  }
  const file = positionals[0]!;
  return { ...a, file, formatName: a.format ?? formatForFile(file) };
}

export function toReplayOptions(a: ReplayArgs, signal?: AbortSignal): ReplayOptions {
  const intervalMs = a.interval !== undefined ? a.interval * 1000 : a.time === undefined && a.formatName === "csv" ? 1000 : undefined;
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
  if (!a.quiet) o.onProgress = (p) => progress.update(`replay ${a.file}: rows published`, p.published, p.elapsedMs, p.fraction);
  process.stderr.write(`replaying ${a.file} (${a.formatName}) to ${describeSpec(a.out) === "mqtt" ? output.description : describeSpec(a.out)} at speed ${a.speed}\n`);
  const summary = await runClosing(output, progress, () => replayFile(o, encoder, output));
  process.stderr.write(`${summary.format()}\n`);
  return summary.stopped ? 130 : 0;
}
