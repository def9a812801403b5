/**
 * Units are recorded, never guessed: a reading's unit is what its source states (a key
 * suffix such as `_hPa`, a SenML `u`, a MySensors V_* type, an rtl_433 field, an XBee pin
 * map) or what the operator configured for its metric; otherwise it stays unknown (no `unit`,
 * stored as NULL) and the field is counted. A known unit is converted to the one canonical
 * unit of its quantity, so one metric never mixes scales. docs/radios.md has the table.
 */
import type { DecodedReading } from "@datalab/shared/reading";
import { cleanFloat } from "./numbers";

interface Conversion {
  /** The canonical unit (SenML, RFC 8428 / RFC 8798, where it has one). */
  readonly unit: string;
  /** canonical = value * factor + offset */
  readonly factor: number;
  readonly offset: number;
}

const to = (unit: string, factor = 1, offset = 0): Conversion => ({ unit, factor, offset });

/** Every unit this project understands, by the spellings sources use, to its canonical unit. */
const CANONICAL = new Map<string, Conversion>([
  // temperature: Cel
  ["Cel", to("Cel")],
  ["C", to("Cel")],
  ["°C", to("Cel")],
  ["degC", to("Cel")],
  ["F", to("Cel", 5 / 9, (-32 * 5) / 9)],
  ["°F", to("Cel", 5 / 9, (-32 * 5) / 9)],
  ["degF", to("Cel", 5 / 9, (-32 * 5) / 9)],
  ["K", to("Cel", 1, -273.15)],
  // pressure: Pa
  ["Pa", to("Pa")],
  ["hPa", to("Pa", 100)],
  ["mbar", to("Pa", 100)],
  ["kPa", to("Pa", 1000)],
  ["bar", to("Pa", 100_000)],
  // 1 lbf/in² = 6894.757293168 Pa; conventional inHg (0 °C) = 3386.389 Pa; mmHg = 133.322387415 Pa.
  ["PSI", to("Pa", 6894.757293168)],
  ["psi", to("Pa", 6894.757293168)],
  ["inHg", to("Pa", 3386.389)],
  ["mmHg", to("Pa", 133.322387415)],
  // relative humidity, percentages, levels: as stated (each its own quantity)
  ["%RH", to("%RH")],
  ["%", to("%")],
  ["%EL", to("%EL")],
  // speed: m/s (1 mi/h = 0.44704 m/s exactly; 1 kn = 1852/3600 m/s)
  ["m/s", to("m/s")],
  ["km/h", to("m/s", 1 / 3.6)],
  ["mi/h", to("m/s", 0.44704)],
  ["mph", to("m/s", 0.44704)],
  ["kn", to("m/s", 1852 / 3600)],
  // rain depth: mm; rain rate: mm/h
  ["mm", to("mm")],
  ["in", to("mm", 25.4)],
  ["mm/h", to("mm/h")],
  ["in/h", to("mm/h", 25.4)],
  // distance: m
  ["m", to("m")],
  ["cm", to("m", 0.01)],
  ["km", to("m", 1000)],
  ["mi", to("m", 1609.344)],
  ["ft", to("m", 0.3048)],
  // electricity
  ["V", to("V")],
  ["mV", to("V", 0.001)],
  ["A", to("A")],
  ["mA", to("A", 0.001)],
  ["W", to("W")],
  ["kW", to("W", 1000)],
  ["kWh", to("kWh")],
  ["Wh", to("kWh", 0.001)],
  ["Ohm", to("Ohm")],
  ["var", to("var")],
  ["VA", to("VA")],
  ["uS/cm", to("uS/cm")],
  ["pH", to("pH")],
  // light, direction, air quality, radio
  ["lx", to("lx")],
  ["lux", to("lx")],
  ["deg", to("deg")],
  ["ppm", to("ppm")],
  ["ug/m3", to("ug/m3")],
  ["dB", to("dB")],
  ["dBm", to("dBm")],
  ["Hz", to("Hz")],
  ["kHz", to("Hz", 1000)],
  ["MHz", to("Hz", 1e6)],
  ["s", to("s")],
  ["min", to("s", 60)],
  ["h", to("s", 3600)],
  ["kg", to("kg")],
  ["g", to("kg", 0.001)],
  ["l", to("l")],
  ["m3", to("m3")],
]);

/** The canonical unit for a unit as a source spells it, or undefined when it is not in the table. */
export function canonicalUnit(unit: string): string | undefined {
  return CANONICAL.get(unit)?.unit;
}

export function isKnownUnit(unit: string): boolean {
  return CANONICAL.has(unit);
}

/** Every unit spelling the table knows, for docs and config errors. */
export function knownUnits(): string[] {
  return [...CANONICAL.keys()];
}

/**
 * Key suffixes that state a unit, as rtl_433 names its fields (docs/DATA_FORMAT.md,
 * "Naming conventions") and DataLab JSON devices may too: `pressure_hPa`, `wind_avg_km_h`.
 * Case matters: `_C` is Celsius, `_c` is not a unit.
 */
const SUFFIX_UNITS = new Map<string, string>([
  ["C", "Cel"],
  ["F", "F"],
  ["K", "K"],
  ["hPa", "hPa"],
  ["kPa", "kPa"],
  ["Pa", "Pa"],
  ["mbar", "mbar"],
  ["PSI", "PSI"],
  ["psi", "psi"],
  ["inHg", "inHg"],
  ["mm", "mm"],
  ["in", "in"],
  ["cm", "cm"],
  ["km", "km"],
  ["mi", "mi"],
  ["m_s", "m/s"],
  ["km_h", "km/h"],
  ["mi_h", "mi/h"],
  ["mm_h", "mm/h"],
  ["in_h", "in/h"],
  ["lux", "lx"],
  ["lx", "lx"],
  ["W", "W"],
  ["kW", "kW"],
  ["Wh", "Wh"],
  ["kWh", "kWh"],
  ["A", "A"],
  ["mA", "mA"],
  ["V", "V"],
  ["mV", "mV"],
  ["deg", "deg"],
  ["ppm", "ppm"],
  ["ug_m3", "ug/m3"],
  ["dB", "dB"],
  ["dBm", "dBm"],
  ["Hz", "Hz"],
]);

export interface SuffixedKey {
  /** The key without its unit suffix: `pressure_hPa` -> `pressure`. */
  readonly metric: string;
  /** The unit as stated (not yet canonical). */
  readonly unit: string;
}

/** `pressure_hPa` -> { metric: "pressure", unit: "hPa" }; undefined when the key states no unit. */
export function splitUnitSuffix(key: string): SuffixedKey | undefined {
  const last = key.lastIndexOf("_");
  if (last <= 0 || last === key.length - 1) return undefined;
  // Two-part suffixes first (`_km_h`), then one-part (`_h` alone is not a unit).
  const before = key.lastIndexOf("_", last - 1);
  if (before > 0) {
    const unit = SUFFIX_UNITS.get(key.slice(before + 1));
    if (unit !== undefined) return { metric: key.slice(0, before), unit };
  }
  const unit = SUFFIX_UNITS.get(key.slice(last + 1));
  return unit === undefined ? undefined : { metric: key.slice(0, last), unit };
}

/**
 * What happened to a numeric field that did not become a reading with a known unit:
 * - `unit_unknown`: stored as its own metric, unit unknown (neither stated nor configured);
 * - `unit_unrecognized`: stored with the unit its source stated, which the table does not know,
 *   so it could not be made canonical;
 * - `metadata`: a receiver or protocol value, not a measurement (rtl_433's rssi, snr, freq);
 * - `superseded`: the same quantity came in another field of the message, which was stored
 *   (rtl_433's `wind_avg_mi_h` beside `wind_avg_km_h`).
 */
export type FieldOutcome = "unit_unknown" | "unit_unrecognized" | "metadata" | "superseded";

export interface FieldNote {
  /** The field (key, SenML name, V_* type...) as the source named it. */
  readonly field: string;
  readonly outcome: FieldOutcome;
}

/** A unit the operator configured for a metric, optionally only for sensors matching a pattern. */
export interface ConfiguredUnit {
  readonly metric: string;
  /** `*` matches any run of characters; absent: every sensor. */
  readonly sensor?: string;
  readonly unit: string;
}

/**
 * Units the operator configured, compiled once (config load time), looked up only for readings
 * whose source stated none. The most specific entry wins: a sensor pattern before the bare
 * metric, a longer pattern before a shorter one.
 */
export class UnitConfig {
  readonly #byMetric = new Map<string, { pattern: RegExp | undefined; unit: string; specificity: number }[]>();
  readonly entries: readonly ConfiguredUnit[];

  constructor(entries: readonly ConfiguredUnit[] = []) {
    this.entries = entries;
    for (const e of entries) {
      const list = this.#byMetric.get(e.metric) ?? [];
      list.push({
        pattern: e.sensor === undefined || e.sensor === "*" ? undefined : globRegExp(e.sensor),
        unit: e.unit,
        specificity: e.sensor === undefined || e.sensor === "*" ? -1 : e.sensor.replace(/\*/g, "").length,
      });
      list.sort((a, b) => b.specificity - a.specificity);
      this.#byMetric.set(e.metric, list);
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** The config's own spelling, `pressure=hPa,outdoor-*\/temperature=F`, for --help and logs. */
  toJSON(): string {
    return this.entries.map((e) => `${e.sensor === undefined ? "" : `${e.sensor}/`}${e.metric}=${e.unit}`).join(",");
  }

  unitFor(sensorId: string, metric: string): string | undefined {
    const list = this.#byMetric.get(metric);
    if (list === undefined) return undefined;
    for (const e of list) if (e.pattern === undefined || e.pattern.test(sensorId)) return e.unit;
    return undefined;
  }

  /** Problems with the entries (unknown units), each naming the entry; empty when fine. */
  static problems(entries: readonly ConfiguredUnit[]): string[] {
    const problems: string[] = [];
    for (const e of entries) {
      if (!CANONICAL.has(e.unit)) {
        problems.push(
          `${e.sensor === undefined ? "" : `${e.sensor}/`}${e.metric}: ` +
            `unit ${JSON.stringify(e.unit)} is not one of ${knownUnits().join(" ")}`,
        );
      }
    }
    return problems;
  }
}

export const NO_CONFIGURED_UNITS = new UnitConfig();

function globRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
}

/**
 * The last step of every decoder: readings whose unit is unknown take the operator's
 * configured unit, if any; every known unit becomes its quantity's canonical unit. Returns
 * the notes left (configured units remove their `unit_unknown` note; a stated unit outside
 * the table adds `unit_unrecognized`). Readings are changed in place (they are the message's own).
 */
export function canonicalizeUnits(
  readings: DecodedReading[],
  notes: readonly FieldNote[] | undefined,
  units: UnitConfig,
): readonly FieldNote[] | undefined {
  let unknownFilled: Set<string> | undefined;
  let added: FieldNote[] | undefined;
  for (const r of readings) {
    if (r.unit === undefined) {
      if (units.size === 0) continue;
      const configured = units.unitFor(r.sensorId, r.metric);
      if (configured === undefined) continue;
      r.unit = configured;
      (unknownFilled ??= new Set()).add(r.metric);
    }
    const c = CANONICAL.get(r.unit);
    if (c === undefined) {
      (added ??= []).push({ field: r.metric, outcome: "unit_unrecognized" });
      continue;
    }
    if (c.factor !== 1 || c.offset !== 0) r.value = cleanFloat(r.value * c.factor + c.offset);
    r.unit = c.unit;
  }
  if (unknownFilled === undefined && added === undefined) return notes;
  const kept = (notes ?? []).filter((n) => !(n.outcome === "unit_unknown" && unknownFilled?.has(n.field)));
  if (added) kept.push(...added);
  return kept.length === 0 ? undefined : kept;
}

/**
 * The units the simulator and the replay tool give their own metrics when a mapping names
 * none. Tools that produce data state these units in what they send; decoders never use
 * this table to guess a unit for input.
 */
export { DEFAULT_UNITS as GENERIC_UNITS } from "@datalab/shared/reading";
