/**
 * Recorded data sets in end-to-end tests: what they should land as, read with parsers of the
 * tests' own (not the replay code's), the SQL that reads the rows back, and the real replay CLI.
 */
import { readFileSync } from "node:fs";
import { runCommand } from "@datalab/shared/testing";

const cli = new URL("../../sensors/src/cli.ts", import.meta.url).pathname;

/** A stored reading as `sensor|metric|ts|value` (ts in epoch ms), to compare with intelLabReadings. */
export const READING_KEY =
  "sensor_id || '|' || metric || '|' || (extract(epoch from ts) * 1000)::bigint || '|' || value";

/** Per sensor (GROUP BY 1): its first and last reading's time in epoch ms, as `first` and `last`. */
export const SENSOR_SPAN =
  "sensor_id, (extract(epoch from min(ts)) * 1000)::bigint AS first, " +
  "(extract(epoch from max(ts)) * 1000)::bigint AS last";

/**
 * Every reading of an Intel Lab file (`date time epoch mote temperature humidity light voltage`)
 * as `sensor|metric|ts|value`, the sensor named from the mote.
 */
export function intelLabReadings(file: string, sensorOf: (mote: string) => string): Set<string> {
  const expected = new Set<string>();
  for (const line of readFileSync(file, "utf8").trim().split("\n")) {
    const [date, time, , mote, ...values] = line.trim().split(/\s+/);
    const ts = Date.parse(`${date}T${time!.slice(0, 12)}Z`);
    ["temperature", "humidity", "light", "voltage"].forEach((metric, i) =>
      expected.add(`${sensorOf(mote!)}|${metric}|${ts}|${Number(values[i])}`),
    );
  }
  return expected;
}

export interface SuthaharanReplay {
  /** The MQTT topic root the rows are published under. */
  topic: string;
  /** The first row's time (ISO 8601); each mote's rows follow it 1 s apart. */
  start: string;
  /** More flags for the replay. */
  extra?: string[];
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/**
 * The real `pnpm sensors replay` of a Suthaharan CSV file, as a child process: one sensor per
 * mote, humidity and temperature with their units, at --speed max.
 */
export function replaySuthaharan(file: string, o: SuthaharanReplay) {
  return runCommand(
    "node",
    [
      "--import",
      "tsx",
      cli,
      "replay",
      file,
      "--sensor",
      "mote_id",
      "--interval",
      "1",
      "--start",
      o.start,
      "--metric",
      "humidity=humidity:%RH",
      "--metric",
      "temperature=temperature:Cel",
      "--speed",
      "max",
      "--topic",
      o.topic,
      "--quiet",
      ...(o.extra ?? []),
    ],
    { env: o.env, timeoutMs: o.timeoutMs },
  );
}
