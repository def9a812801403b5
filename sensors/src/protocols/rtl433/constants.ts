/**
 * How rtl_433's JSON keys become metrics. rtl_433 puts the unit in the key name
 * (see "Naming conventions" in rtl_433's README / docs/DATA_FORMAT.md): `temperature_C`,
 * `wind_avg_km_h`, `pressure_hPa`. Each rule lists the keys that carry one quantity, best
 * first; the first key present wins, so an event that sends both `wind_avg_mi_h` and
 * `wind_avg_km_h` (Acurite-Optimus does) yields one wind_speed reading, not two.
 * Other numeric keys are stored too (decode.ts): with the unit their suffix states, else as
 * their own metric with an unknown unit; identity and receiver metadata keys are listed below.
 */
export interface Rtl433Source {
  readonly key: string;
  /** The unit rtl_433 states for the key (its suffix, or its docs for a bare key); made canonical after decoding. */
  readonly unit?: string;
}

export interface Rtl433FieldRule {
  readonly metric: string;
  readonly sources: readonly Rtl433Source[];
}

/**
 * `-C si` and `-C customary` (rtl_433 -C) rename the keys with their unit (`temperature_F`,
 * `pressure_PSI`, `rain_in`, `wind_avg_mi_h`): both spellings of a quantity are listed, and
 * both land in the one canonical unit (common/units.ts). A rule without a unit on its
 * sources is dimensionless (battery_ok, uv index, a count).
 */
export const RTL433_FIELD_RULES: readonly Rtl433FieldRule[] = [
  {
    metric: "temperature",
    sources: [
      { key: "temperature_C", unit: "Cel" },
      { key: "temperature_F", unit: "F" },
    ],
  },
  // rtl_433 documents `humidity` as percent relative humidity.
  { metric: "humidity", sources: [{ key: "humidity", unit: "%RH" }] },
  // 1 = battery fine, 0 = low. Some newer decoders report a 0..1 level here; kept as sent.
  { metric: "battery_ok", sources: [{ key: "battery_ok" }] },
  {
    metric: "battery_voltage",
    sources: [
      { key: "battery_mV", unit: "mV" },
      { key: "battery_V", unit: "V" },
    ],
  },
  {
    metric: "pressure",
    sources: [
      { key: "pressure_hPa", unit: "hPa" },
      { key: "pressure_kPa", unit: "kPa" },
      { key: "pressure_PSI", unit: "PSI" },
      { key: "pressure_inHg", unit: "inHg" },
    ],
  },
  {
    metric: "wind_speed",
    sources: [
      { key: "wind_avg_m_s", unit: "m/s" },
      { key: "wind_avg_km_h", unit: "km/h" },
      { key: "wind_avg_mi_h", unit: "mi/h" },
      // Legacy Oregon WGR800/WGR968 output: "average" in m/s (rtl_433 oregon_scientific.c, ~2016).
      { key: "average", unit: "m/s" },
    ],
  },
  {
    metric: "wind_gust",
    sources: [
      { key: "wind_max_m_s", unit: "m/s" },
      { key: "wind_max_km_h", unit: "km/h" },
      { key: "wind_max_mi_h", unit: "mi/h" },
      // Legacy Oregon output: "gust" in m/s.
      { key: "gust", unit: "m/s" },
    ],
  },
  // Legacy Oregon output: "direction" in degrees.
  {
    metric: "wind_direction",
    sources: [
      { key: "wind_dir_deg", unit: "deg" },
      { key: "direction", unit: "deg" },
    ],
  },
  {
    metric: "rain",
    sources: [
      { key: "rain_mm", unit: "mm" },
      { key: "rain_in", unit: "in" },
    ],
  },
  {
    metric: "rain_rate",
    sources: [
      { key: "rain_rate_mm_h", unit: "mm/h" },
      { key: "rain_rate_in_h", unit: "in/h" },
    ],
  },
  // Acurite-Atlas prints "lux" rather than "light_lux".
  {
    metric: "light",
    sources: [
      { key: "light_lux", unit: "lx" },
      { key: "lux", unit: "lx" },
    ],
  },
  // Fineoffset-WH24 "uv" is the raw sensor count, "uvi" the UV index: both dimensionless.
  { metric: "uv", sources: [{ key: "uv" }] },
  { metric: "uv_index", sources: [{ key: "uvi" }] },
  { metric: "pm2_5", sources: [{ key: "pm2_5_ug_m3", unit: "ug/m3" }] },
  { metric: "pm10", sources: [{ key: "pm10_ug_m3", unit: "ug/m3" }] },
  // Fineoffset-WH0290 derives PM10 from PM2.5; named apart so it is not mistaken for a measurement.
  { metric: "pm10_estimated", sources: [{ key: "estimated_pm10_0_ug_m3", unit: "ug/m3" }] },
  { metric: "co2", sources: [{ key: "co2_ppm", unit: "ppm" }] },
  // rtl_433 documents `moisture` as percent.
  { metric: "moisture", sources: [{ key: "moisture", unit: "%" }] },
  { metric: "power", sources: [{ key: "power_W", unit: "W" }] },
  { metric: "energy", sources: [{ key: "energy_kWh", unit: "kWh" }] },
  { metric: "current", sources: [{ key: "current_A", unit: "A" }] },
  { metric: "voltage", sources: [{ key: "voltage_V", unit: "V" }] },
  // Lightning detectors (Fineoffset-WH57, Acurite-6045M): a count of strikes.
  { metric: "strike_count", sources: [{ key: "strike_count" }] },
  {
    metric: "storm_distance",
    sources: [
      { key: "storm_dist_km", unit: "km" },
      { key: "storm_dist_mi", unit: "mi" },
      { key: "storm_dist", unit: "km" },
    ],
  },
  {
    metric: "setpoint",
    sources: [
      { key: "setpoint_C", unit: "Cel" },
      { key: "setpoint_F", unit: "F" },
    ],
  },
];

/**
 * Numeric keys that identify the sensor or the reception rather than measure: `id` and
 * `channel` make the sensor id; the rest is receiver metadata (`-M level`, `-M protocol`...),
 * counted as `metadata`, not stored.
 */
export const RTL433_IDENTITY_KEYS: ReadonlySet<string> = new Set(["model", "id", "channel", "time"]);
export const RTL433_METADATA_KEYS: ReadonlySet<string> = new Set([
  "rssi",
  "snr",
  "noise",
  "freq",
  "freq1",
  "freq2",
  "protocol",
  "mod",
  "mic",
  "bits",
  "rows",
  "subtype",
  "sequence",
  "sequence_num",
  "seq",
  "message_type",
  "msg_type",
  "flags",
  "status",
  "exception",
  "test",
  "learn",
  "newbattery",
  "family",
  "unknown",
  "unknown1",
  "unknown2",
  "unknown3",
  "unknown4",
  // Remote controls and doorbells: which button, which command; an event, not a measurement.
  "button",
  "cmd",
  "code",
  "event",
]);

/** Multi-probe sensors number their channels: `temperature_1_C`, `humidity_2`. */
export const RTL433_INDEXED_TEMPERATURE = /^temperature_(\d{1,2})_([CF])$/;
export const RTL433_INDEXED_HUMIDITY = /^humidity_(\d{1,2})$/;

/** Older rtl_433 output (before battery_ok, ~2019): "battery": "OK" | "LOW". */
export const RTL433_LEGACY_BATTERY_KEY = "battery";

export const RTL433_SENSOR_ID_PREFIX = "rtl433";

/** rtl_433 events are a few hundred bytes; 8 KiB bounds the buffer with a wide margin. */
export const RTL433_DEFAULT_MAX_LINE_LENGTH = 8192;
