/**
 * Timestamps in recorded data sets: epoch seconds or milliseconds, or a calendar date-time
 * such as `2004-03-31 03:38:15.757551`. Recorded files rarely say their zone; a zone-less time
 * is read at `zoneOffsetMinutes` from UTC (default 0: UTC), never in the replaying machine's
 * zone, so a replay gives the same timestamps everywhere. Fractions finer than a millisecond
 * are cut (the pipeline keeps milliseconds).
 */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Below this a number is seconds (1e11 s is the year 5138, 1e11 ms is 1973): the gateway's rule too. */
const SECONDS_MS_BOUNDARY = 1e11;
const MAX_EPOCH_MS = 7_258_118_400_000;

export function parseTime(text: string, zoneOffsetMinutes = 0): number | undefined {
  const t = text.trim();
  let ms: number;
  if (NUMBER.test(t)) {
    const n = Number(t);
    ms = Math.round(Math.abs(n) < SECONDS_MS_BOUNDARY ? n * 1000 : n);
  } else {
    const m = DATE_TIME.exec(t);
    if (!m) return undefined;
    const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
    const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
    ms = Date.UTC(...parts) + Number(frac.slice(0, 3).padEnd(3, "0"));
    // Date.UTC rolls 2004-02-30 over into March; a date that does not round-trip is not a date.
    const back = new Date(Date.UTC(...parts));
    if (
      back.getUTCMonth() !== parts[1] ||
      back.getUTCDate() !== parts[2] ||
      back.getUTCHours() !== parts[3] ||
      back.getUTCMinutes() !== parts[4] ||
      parts[5] > 59
    )
      return undefined;
    ms -= (zone === undefined ? zoneOffsetMinutes : zoneMinutes(zone)) * 60_000;
  }
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_EPOCH_MS ? ms : undefined;
}

/** `Z`, `+02:00`, `-0530` → minutes east of UTC. */
export function zoneMinutes(zone: string): number {
  if (zone.toUpperCase() === "Z") return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (!m) return Number.NaN;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}
