/**
 * Every numeric field of an rtl_433 event is accounted for: stored (in its canonical unit when
 * the key states one, else as its own metric with an unknown unit) or counted (metadata,
 * superseded). Driven by Debian's real rtl_433 decoding its decoders' own test codes (`-y`,
 * /work/shared/fixtures/rtl_433/test-codes.tsv) in both unit systems, `-C si` and `-C customary`.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCommand } from "@datalab/shared/testing";
import {
  createMessageDecoder,
  RTL433_FIELD_RULES,
  splitUnitSuffix,
  UnitConfig,
  type FieldNote,
} from "../../src/protocols/index";

const decode = createMessageDecoder("rtl433");
/** Keys that name the sensor or the time; not measurements, not counted. */
const IDENTITY = new Set(["model", "id", "channel", "time"]);
const RULE_METRIC = new Map(RTL433_FIELD_RULES.flatMap((r) => r.sources.map((s) => [s.key, r.metric] as const)));

interface Account {
  stored: string[];
  counted: FieldNote[];
  unaccounted: string[];
}

/** Which numeric field became which reading, or which note; what is left is unaccounted. */
function account(line: string): Account {
  const event = JSON.parse(line) as Record<string, unknown>;
  const r = decode(Buffer.from(line));
  if (r.kind === "error") throw new Error(`${r.reason}: ${r.message} in ${line}`);
  const counted = [...(r.notes ?? [])];
  const metrics = new Set(r.kind === "readings" ? r.readings.map((x) => x.metric) : []);
  const stored: string[] = [];
  const unaccounted: string[] = [];
  for (const [key, value] of Object.entries(event)) {
    if (typeof value !== "number" || IDENTITY.has(key)) continue;
    if (counted.some((n) => n.field === key && n.outcome !== "unit_unknown")) continue;
    const metric = RULE_METRIC.get(key) ?? key.replace(/^(temperature|humidity)_(\d{1,2})(_[CF])?$/, "$1_$2");
    const candidates = [metric, splitUnitSuffix(key)?.metric, key];
    if (candidates.some((m) => m !== undefined && metrics.has(m))) stored.push(key);
    else unaccounted.push(key);
  }
  return { stored, counted, unaccounted };
}

describe("rtl_433 fields: stored or counted, never dropped", () => {
  it("pressure_PSI, current and strike_count are each stored or counted", () => {
    const line = JSON.stringify({
      model: "Tyre-And-Storm",
      id: 9,
      pressure_PSI: 32.5,
      current: 4.641,
      strike_count: 12,
      storm_dist_km: 8,
      rssi: -12.1,
    });
    const r = decode(Buffer.from(line));
    expect(r.kind).toBe("readings");
    if (r.kind !== "readings") return;
    const byMetric = Object.fromEntries(r.readings.map((x) => [x.metric, [x.value, x.unit]]));
    expect(byMetric).toEqual({
      pressure: [224079.612028, "Pa"],
      strike_count: [12, undefined],
      storm_distance: [8000, "m"],
      current: [4.641, undefined],
    });
    expect(r.notes).toEqual([
      { field: "rssi", outcome: "metadata" },
      { field: "current", outcome: "unit_unknown" },
    ]);
    expect(account(line).unaccounted).toEqual([]);
    // With the unit configured (Efergy's is amperes), `current` is stored in A and no longer counted.
    const configured = createMessageDecoder("rtl433", { units: new UnitConfig([{ metric: "current", unit: "A" }]) })(
      Buffer.from(line),
    );
    expect(configured).toMatchObject({ kind: "readings", notes: [{ field: "rssi", outcome: "metadata" }] });
    if (configured.kind === "readings")
      expect(configured.readings.find((x) => x.metric === "current")).toMatchObject({ value: 4.641, unit: "A" });
  });

  it("the same quantity in -C si and -C customary spellings lands in one canonical unit", () => {
    const si = decode(
      Buffer.from(
        '{"model":"W","id":1,"temperature_C":20,"pressure_kPa":220,"rain_mm":25.4,"wind_avg_km_h":36,"setpoint_C":21}',
      ),
    );
    const customary = decode(
      Buffer.from(
        '{"model":"W","id":1,"temperature_F":68,"pressure_PSI":31.9083,"rain_in":1,' +
          '"wind_avg_mi_h":22.3694,"setpoint_F":69.8}',
      ),
    );
    const values = (r: typeof si) =>
      r.kind === "readings"
        ? Object.fromEntries(r.readings.map((x) => [x.metric, [Math.round(x.value * 10) / 10, x.unit]]))
        : {};
    expect(values(customary)).toEqual(values(si));
    expect(values(si)).toEqual({
      temperature: [20, "Cel"],
      pressure: [220000, "Pa"],
      rain: [25.4, "mm"],
      wind_speed: [10, "m/s"],
      setpoint: [21, "Cel"],
    });
  });

  it("Debian's rtl_433 -y on its decoders' test codes, -C si and -C customary: " +
    "every numeric field accounted for (needs rtl_433)", async () => {
    const which = await runCommand("sh", ["-c", "command -v rtl_433"]);
    if (which.stdout.trim() === "") {
      console.warn("SKIPPED: rtl_433 is not installed (apt-get install rtl-433)");
      return;
    }
    const codes = readFileSync(new URL("../../../../shared/fixtures/rtl_433/test-codes.tsv", import.meta.url), "utf8")
      .split("\n")
      .slice(1)
      .map((l) => l.split("\t")[0]!)
      .filter(Boolean);
    const jobs = [...new Set(codes)].flatMap((code) =>
      (["si", "customary"] as const).map((units) => ({ code, units })),
    );
    const lines: { units: string; line: string }[] = [];
    // Two at a time, asynchronously: the vitest worker is never blocked, the machine's two cores are shared.
    let next = 0;
    await Promise.all(
      [0, 1].map(async () => {
        while (next < jobs.length) {
          const job = jobs[next++]!;
          // Three rows of the same bits, as a sensor repeats its transmission: some decoders need the repeat.
          const bits = `${job.code} ${job.code} ${job.code}`;
          const r = await runCommand("rtl_433", ["-F", "json", "-C", job.units, "-y", bits], { timeoutMs: 20_000 });
          for (const line of r.stdout.split("\n")) if (line.startsWith("{")) lines.push({ units: job.units, line });
        }
      }),
    );
    const models = new Set(lines.map((l) => (JSON.parse(l.line) as { model: string }).model));
    expect(models.size).toBeGreaterThanOrEqual(30);
    let numeric = 0;
    let stored = 0;
    const counted: Record<string, number> = {};
    for (const { units, line } of lines) {
      const a = account(line);
      expect(a.unaccounted, `${units}: ${line}`).toEqual([]);
      numeric += a.stored.length + a.counted.filter((n) => n.outcome !== "unit_unknown").length;
      stored += a.stored.length;
      for (const n of a.counted) counted[n.outcome] = (counted[n.outcome] ?? 0) + 1;
    }
    expect(stored).toBeGreaterThan(0);
    console.info(
      `rtl_433 -y: ${models.size} models, ${lines.length} events (-C si and -C customary), ` +
        `${numeric} numeric fields: ${stored} stored, counted ${JSON.stringify(counted)}`,
    );
  }, 120_000);
});
