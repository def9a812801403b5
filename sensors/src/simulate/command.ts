import { z } from "zod";
import type { FaultOptions } from "./samples/faults";
import { SENSOR_KINDS } from "./samples/kinds";
import { createEncoder, describeSpec, openOutput, OUTPUT_SPEC_HELP } from "./outputs/index";
import { runSimulation, type RunSimulationOptions, type SimulationStats } from "./run";
import { ProgressLine, runClosing } from "./progress";
import { int, isoTime, num, outputSpec, parseFlags, speed } from "./flags";

export const SIMULATE_FLAGS = {
  sensors: { type: "string" },
  rate: { type: "string" },
  interval: { type: "string" },
  seed: { type: "string" },
  count: { type: "string" },
  format: { type: "string" },
  topic: { type: "string" },
  qos: { type: "string" },
  kinds: { type: "string" },
  out: { type: "string" },
  speed: { type: "string" },
  start: { type: "string" },
  "id-prefix": { type: "string" },
  profile: { type: "string" },
  "temperature-mean": { type: "string" },
  "daily-amplitude": { type: "string" },
  noise: { type: "string" },
  "battery-life": { type: "string" },
  "clock-drift": { type: "string" },
  "clock-offset": { type: "string" },
  "dropout-rate": { type: "string" },
  "duplicate-rate": { type: "string" },
  "reorder-rate": { type: "string" },
  "malformed-rate": { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

export const SIMULATE_HELP = `simulate: simulated sensors with daily cycles, noise, battery decay, and optional faults
  --sensors N          number of sensors (default 10)
  --rate R             reading cycles per second of sensor time, all sensors together (default 1)
  --interval S         or: seconds between two readings of one sensor (rate = sensors / S)
  --speed 1|N|max      sensor time against the wall clock: 1 real time, N times faster,
                       max as fast as the output takes (default 1)
  --count C            stop after C reading cycles (default: run until Ctrl-C)
  --seed S             the same seed (and options) gives the same stream (default 1)
  --start ISO          sensor time of the first reading (default now)
  --kinds LIST         comma-separated, of ${SENSOR_KINDS.join(", ")}
                       (default temperature,humidity,battery)
  --id-prefix P        sensor ids are P-1, P-2, ... (default sim)
  --out OUT            ${OUTPUT_SPEC_HELP}
                       (default mqtt, at DATALAB_MQTT_URL)
  --format F           MQTT only. multi: {"sensor","temperature",...,"ts"} on <topic>/<id>;
                       original: the original DataLab {"name","value"} (first kind) on <topic>
                       (default multi)
  --topic T            MQTT topic root (default sensors)
  --qos Q              MQTT QoS, 0 or 1 (default 0)
 behaviour:
  --temperature-mean C    every sensor's mean temperature (default: drawn per sensor, 18..24)
  --daily-amplitude C     every sensor's daily half-swing (default: drawn per sensor, 1.5..4)
  --noise C               temperature noise, standard deviation (default 0.15)
  --battery-life N        reading cycles from a full battery to a flat one (default 5000000);
                          below 2.4 V readings drift and spike (up to 122.153 °C, humidity < 0),
                          a flat battery goes silent, then gets replaced
  --clock-drift PPM       each sensor's clock runs fast or slow by up to ± PPM (default 0)
  --clock-offset S        each sensor's clock is off by up to ± S seconds (default 0)
 faults (probability per reading cycle, 0..1, default 0):
  --dropout-rate P        the reading is never sent
  --duplicate-rate P      sent twice
  --reorder-rate P        held back and sent after the next one
  --malformed-rate P      damaged payload (single quotes, truncated, NaN, garbage, bad checksum...)
  --profile clean|realistic  realistic: all kinds, dropout 0.01, duplicate 0.005, reorder 0.005,
                          malformed 0.002, clock drift 40 ppm, offset 2 s (flags still win)
  --quiet, -q             no progress line
 Serial protocols name sensors their own way: MySensors mys-<node>-<child> (node = the sim id's
 number; no timestamps on the wire, the gateway stamps its receive time), XBee
 xbee-0013a200<node in hex>, rtl_433 rtl433-DataLab-Sim-<node>; JSON lines keep the sim ids.
`;

const REALISTIC: Record<string, string> = {
  kinds: SENSOR_KINDS.join(","),
  "dropout-rate": "0.01",
  "duplicate-rate": "0.005",
  "reorder-rate": "0.005",
  "malformed-rate": "0.002",
  "clock-drift": "40",
  "clock-offset": "2",
};

const SimulateArgs = z.object({
  sensors: int(1, 1_000_000).default(10),
  rate: num(1e-6).optional(),
  interval: num(1e-6).optional(),
  seed: z.string().min(1).default("1"),
  count: int(1).optional(),
  format: z.enum(["multi", "original"], { error: "expected multi or original" }).default("multi"),
  topic: z.string().min(1).default("sensors"),
  qos: z
    .enum(["0", "1"], { error: "expected 0 or 1" })
    .default("0")
    .transform((q) => (q === "1" ? 1 : 0) as 0 | 1),
  kinds: z
    .string()
    .transform((v) =>
      v
        .split(",")
        .map((k) => k.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(SENSOR_KINDS, { error: `expected kinds among ${SENSOR_KINDS.join(", ")}` })).min(1))
    .optional(),
  out: outputSpec,
  speed,
  start: isoTime.optional(),
  "id-prefix": z.string().min(1).default("sim"),
  profile: z.enum(["clean", "realistic"], { error: "expected clean or realistic" }).default("clean"),
  "temperature-mean": num(-60, 120).optional(),
  "daily-amplitude": num(0, 50).optional(),
  noise: num(0, 50).optional(),
  "battery-life": int(1).optional(),
  "clock-drift": num(0, 100_000).optional(),
  "clock-offset": num(0).optional(),
  "dropout-rate": num(0, 1).optional(),
  "duplicate-rate": num(0, 1).optional(),
  "reorder-rate": num(0, 1).optional(),
  "malformed-rate": num(0, 1).optional(),
  quiet: z.boolean().default(false),
});

export type SimulateArgs = z.infer<typeof SimulateArgs>;

export function parseSimulateArgs(values: Record<string, unknown>): SimulateArgs {
  const withProfile = values.profile === "realistic" ? { ...REALISTIC, ...stripUndefined(values) } : values;
  return parseFlags(SimulateArgs, withProfile, [["rate", "interval"]]);
}

export function toRunOptions(a: SimulateArgs, signal?: AbortSignal): RunSimulationOptions {
  const faults: FaultOptions = {
    dropoutRate: a["dropout-rate"] ?? 0,
    duplicateRate: a["duplicate-rate"] ?? 0,
    reorderRate: a["reorder-rate"] ?? 0,
    malformedRate: a["malformed-rate"] ?? 0,
  };
  const o: RunSimulationOptions = {
    sensors: a.sensors,
    rate: a.interval !== undefined ? a.sensors / a.interval : (a.rate ?? 1),
    seed: a.seed,
    startTs: a.start ?? Date.now(),
    idPrefix: a["id-prefix"],
    speed: a.speed,
    ...faults,
  };
  if (a.count !== undefined) o.count = a.count;
  if (a.kinds !== undefined) o.kinds = a.kinds;
  if (a["temperature-mean"] !== undefined) o.meanTemperature = a["temperature-mean"];
  if (a["daily-amplitude"] !== undefined) o.dailyAmplitude = a["daily-amplitude"];
  if (a.noise !== undefined) o.noise = a.noise;
  if (a["battery-life"] !== undefined) o.batteryLife = a["battery-life"];
  if (a["clock-drift"] !== undefined) o.maxClockDriftPpm = a["clock-drift"];
  if (a["clock-offset"] !== undefined) o.maxClockOffsetMs = a["clock-offset"] * 1000;
  if (signal) o.signal = signal;
  return o;
}

export async function simulateCommand(a: SimulateArgs, mqttUrl: string, signal: AbortSignal): Promise<number> {
  const encoder = createEncoder(a.out, { format: a.format, topicRoot: a.topic });
  const output = await openOutput(a.out, { mqttUrl, qos: a.qos });
  const progress = new ProgressLine();
  const o = toRunOptions(a, signal);
  if (!a.quiet)
    o.onProgress = (s) =>
      progress.update("simulate: messages sent", s.sent, s.elapsedMs, a.count ? s.cycles / a.count : undefined);
  const stats: SimulationStats = await runClosing(output, progress, () => runSimulation(o, encoder, output));
  const secs = stats.elapsedMs / 1000;
  const target = describeSpec(a.out) === "mqtt" ? output.description : describeSpec(a.out);
  const rate = Math.round(stats.sent / Math.max(secs, 1e-9)).toLocaleString("en-US");
  process.stderr.write(
    `simulated ${stats.cycles} reading cycles of ${a.sensors} sensors; sent ${stats.sent} messages to ${target} ` +
      `in ${secs.toFixed(2)} s (${rate} messages/s)\n` +
      `  faults: ${stats.dropped} dropped, ${stats.batteryFlat} silent (flat battery), ` +
      `${stats.duplicated} duplicated, ${stats.reordered} reordered, ${stats.malformed} malformed\n`,
  );
  return 0;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
