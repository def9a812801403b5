import { z } from "zod";
import { MAX_RX_WINDOW_MS } from "@datalab/shared";
import { topicMatches } from "./mqtt/topics";

/**
 * The fold window of readings the gateway stamps with its receive time, per format (see
 * docs/radios.md, "One row per measurement"). Readings of the same sensor, metric and value
 * within the window are one measurement at the hub, whichever gateway heard them.
 *
 * rtl_433 reports each repeat of a 433 MHz transmission (2-3 within about a second) and every
 * gateway in range hears them all, while its sensors send every 15-60 s: 2 s folds the repeats
 * and a second gateway's copy (clock offset and path delay included) and no real reading. The
 * other formats are off: their radios do not repeat, and a 1 Hz sensor reporting the same value
 * twice in a row made two measurements.
 */
export const MEASUREMENT_FORMATS = ["jsonl", "mysensors", "xbee", "xbee2", "rtl433"] as const;
export type MeasurementFormat = (typeof MEASUREMENT_FORMATS)[number];
export type RxWindows = Readonly<Record<MeasurementFormat, number>>;

export const DEFAULT_RX_WINDOWS: RxWindows = Object.freeze({
  jsonl: 0,
  mysensors: 0,
  xbee: 0,
  xbee2: 0,
  rtl433: 2_000,
});

/** `rtl433=2000,mysensors=250`: formats named override their default; the rest keep it. */
export const rxWindowsSchema = z
  .string()
  .default("")
  .transform((v, ctx): RxWindows => {
    const out: Record<string, number> = { ...DEFAULT_RX_WINDOWS };
    for (const part of v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const m = /^([a-z0-9]+)=(\d+)$/.exec(part);
      if (!m || !isMeasurementFormat(m[1]) || Number(m[2]) > MAX_RX_WINDOW_MS) {
        ctx.addIssue({
          code: "custom",
          message:
            `"${part}": expected format=milliseconds, format one of ${MEASUREMENT_FORMATS.join(", ")}, at most ` +
            `${MAX_RX_WINDOW_MS} ms`,
        });
        return z.NEVER;
      }
      out[m[1]!] = Number(m[2]);
    }
    return Object.freeze(out as RxWindows);
  });

/** Sources are few, MQTT topics are not: the answers kept per source are bounded. */
const CACHE_SIZE = 4_096;

/** An MQTT topic filter and the format of its payloads, in the order the MQTT source matches them. */
export interface TopicRouteFormat {
  filter: string;
  format: string;
}

/**
 * The window of a source's receipt-stamped readings, from its name: `serial:<path>:<protocol>`,
 * `rtl433:<command>`, `mqtt:<topic>` (the format of the first route whose filter matches).
 */
export function rxWindowOf(windows: RxWindows, mqttRoutes: readonly TopicRouteFormat[]): (source: string) => number {
  const cache = new Map<string, number>();
  return (source) => {
    let w = cache.get(source);
    if (w !== undefined) return w;
    w = windows[formatOf(source, mqttRoutes)];
    if (cache.size >= CACHE_SIZE) cache.clear();
    cache.set(source, w);
    return w;
  };
}

export function formatOf(source: string, mqttRoutes: readonly TopicRouteFormat[]): MeasurementFormat {
  let format: string | undefined;
  if (source.startsWith("rtl433:")) format = "rtl433";
  else if (source.startsWith("mqtt:")) {
    const topic = source.slice(5);
    format = mqttRoutes.find((r) => topicMatches(r.filter, topic))?.format;
  } else if (source.startsWith("serial:")) format = source.slice(source.lastIndexOf(":") + 1);
  return isMeasurementFormat(format) ? format : "jsonl";
}

function isMeasurementFormat(f: string | undefined): f is MeasurementFormat {
  return (MEASUREMENT_FORMATS as readonly (string | undefined)[]).includes(f);
}
