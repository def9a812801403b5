import { toEpochMillis } from "../common/numbers";

export interface Rtl433TimeOptions {
  /**
   * rtl_433's default `time` is wall-clock "YYYY-MM-DD HH:MM:SS" in the local zone of the
   * machine running it, with no zone marker, so it cannot be read safely: such events get no
   * `ts` and the gateway stamps its receive time (the two differ by milliseconds when rtl_433
   * runs live next to the gateway). Set this when rtl_433 runs with `-M time:utc`, which
   * prints the same format in UTC.
   */
  readonly wallClockIsUtc?: boolean;
}

const WALL_CLOCK = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/;

/**
 * Epoch ms from rtl_433's `time`, or undefined when it carries no usable absolute time:
 * - `@0.084672s`: seconds since the start of a replayed capture file (`-r`), not a date;
 * - zone-less wall clock: see `wallClockIsUtc`;
 * - `-M time:unix[:usec]`: epoch seconds; `-M time:iso:tz`: ISO 8601 with offset.
 * An unrecognised format is treated as absent rather than failing the whole event: it is
 * rtl_433's metadata, not the sensor's.
 */
export function rtl433Timestamp(time: unknown, options: Rtl433TimeOptions = {}): number | undefined {
  if (typeof time === "number") {
    const r = toEpochMillis(time);
    return r.ok ? r.ts : undefined;
  }
  if (typeof time !== "string" || time.startsWith("@")) return undefined;
  const wall = WALL_CLOCK.exec(time);
  if (wall) {
    if (!options.wallClockIsUtc) return undefined;
    const r = toEpochMillis(`${wall[1]}T${wall[2]}Z`);
    return r.ok ? r.ts : undefined;
  }
  const r = toEpochMillis(time);
  return r.ok ? r.ts : undefined;
}
