/**
 * How rtl_433's JSON keys become metrics. rtl_433 puts the unit in the key name
 * (see "Naming conventions" in rtl_433's README / docs/DATA_FORMAT.md): `temperature_C`,
 * `wind_avg_km_h`, `pressure_hPa`. Each rule lists the keys that carry one quantity, best
 * first; the first key present wins, so an event that sends both `wind_avg_mi_h` and
 * `wind_avg_km_h` (Acurite-Optimus does) yields one wind_speed reading, not two.
 * Keys not listed here (id, channel, mic, status, raw_msg, rssi...) are metadata, not readings.
 */
export interface Rtl433Source {
  readonly key: string;
  /** Converts the key's unit to the rule's unit. */
  readonly convert?: (value: number) => number;
}

export interface Rtl433FieldRule {
  readonly metric: string;
  /** SenML unit (RFC 8428, RFC 8798); absent for dimensionless values. */
  readonly unit?: string;
  readonly sources: readonly Rtl433Source[];
}

const fahrenheitToCelsius = (f: number): number => ((f - 32) * 5) / 9;
const kmhToMs = (v: number): number => v / 3.6;
/** International mile: 1609.344 m, so 1 mi/h = 0.44704 m/s exactly. */
const mphToMs = (v: number): number => v * 0.44704;
const inchToMm = (v: number): number => v * 25.4;
const hpaToPa = (v: number): number => v * 100;
const kpaToPa = (v: number): number => v * 1000;
const mvToV = (v: number): number => v / 1000;

export const RTL433_FIELD_RULES: readonly Rtl433FieldRule[] = [
  {
    metric: "temperature",
    unit: "Cel",
    sources: [{ key: "temperature_C" }, { key: "temperature_F", convert: fahrenheitToCelsius }],
  },
  { metric: "humidity", unit: "%RH", sources: [{ key: "humidity" }] },
  // 1 = battery fine, 0 = low. Some newer decoders report a 0..1 level here; kept as sent.
  { metric: "battery_ok", sources: [{ key: "battery_ok" }] },
  { metric: "battery_voltage", unit: "V", sources: [{ key: "battery_mV", convert: mvToV }] },
  {
    metric: "pressure",
    unit: "Pa",
    sources: [
      { key: "pressure_hPa", convert: hpaToPa },
      { key: "pressure_kPa", convert: kpaToPa },
    ],
  },
  {
    metric: "wind_speed",
    unit: "m/s",
    sources: [
      { key: "wind_avg_m_s" },
      { key: "wind_avg_km_h", convert: kmhToMs },
      { key: "wind_avg_mi_h", convert: mphToMs },
      // Legacy Oregon WGR800/WGR968 output: "average" in m/s (rtl_433 oregon_scientific.c, ~2016).
      { key: "average" },
    ],
  },
  {
    metric: "wind_gust",
    unit: "m/s",
    sources: [
      { key: "wind_max_m_s" },
      { key: "wind_max_km_h", convert: kmhToMs },
      { key: "wind_max_mi_h", convert: mphToMs },
      // Legacy Oregon output: "gust" in m/s.
      { key: "gust" },
    ],
  },
  {
    metric: "wind_direction",
    unit: "deg",
    // Legacy Oregon output: "direction" in degrees.
    sources: [{ key: "wind_dir_deg" }, { key: "direction" }],
  },
  { metric: "rain", unit: "mm", sources: [{ key: "rain_mm" }, { key: "rain_in", convert: inchToMm }] },
  {
    metric: "rain_rate",
    unit: "mm/h",
    sources: [{ key: "rain_rate_mm_h" }, { key: "rain_rate_in_h", convert: inchToMm }],
  },
  // Acurite-Atlas prints "lux" rather than "light_lux".
  { metric: "light", unit: "lx", sources: [{ key: "light_lux" }, { key: "lux" }] },
  // Fineoffset-WH24 "uv" is the raw sensor count, "uvi" the UV index: both dimensionless.
  { metric: "uv", sources: [{ key: "uv" }] },
  { metric: "uv_index", sources: [{ key: "uvi" }] },
  { metric: "pm2_5", unit: "ug/m3", sources: [{ key: "pm2_5_ug_m3" }] },
  { metric: "pm10", unit: "ug/m3", sources: [{ key: "pm10_ug_m3" }] },
  // Fineoffset-WH0290 derives PM10 from PM2.5; named apart so it is not mistaken for a measurement.
  { metric: "pm10_estimated", unit: "ug/m3", sources: [{ key: "estimated_pm10_0_ug_m3" }] },
  { metric: "co2", unit: "ppm", sources: [{ key: "co2_ppm" }] },
  { metric: "moisture", unit: "%", sources: [{ key: "moisture" }] },
  { metric: "power", unit: "W", sources: [{ key: "power_W" }] },
  { metric: "energy", unit: "kWh", sources: [{ key: "energy_kWh" }] },
  { metric: "current", unit: "A", sources: [{ key: "current_A" }] },
  { metric: "voltage", unit: "V", sources: [{ key: "voltage_V" }] },
];

/** Multi-probe sensors number their channels: `temperature_1_C`, `humidity_2`. */
export const RTL433_INDEXED_TEMPERATURE = /^temperature_(\d{1,2})_([CF])$/;
export const RTL433_INDEXED_HUMIDITY = /^humidity_(\d{1,2})$/;

/** Older rtl_433 output (before battery_ok, ~2019): "battery": "OK" | "LOW". */
export const RTL433_LEGACY_BATTERY_KEY = "battery";

export const RTL433_SENSOR_ID_PREFIX = "rtl433";

/** rtl_433 events are a few hundred bytes; 8 KiB bounds the buffer with a wide margin. */
export const RTL433_DEFAULT_MAX_LINE_LENGTH = 8192;

export { fahrenheitToCelsius };
