/**
 * What a simulated sensor can measure, and the SenML unit of each. The simulator states these
 * units where its format can (a `units` map, a V_* type, an rtl_433 key suffix; XBee
 * `name=value` text cannot): decoders never guess a unit from a metric's name.
 */
export const SENSOR_KINDS = ["temperature", "humidity", "light", "pressure", "battery"] as const;
export type SensorKind = (typeof SENSOR_KINDS)[number];

export const KIND_UNITS: Readonly<Record<SensorKind, string>> = Object.freeze({
  temperature: "Cel",
  humidity: "%RH",
  light: "lx",
  pressure: "Pa",
  battery: "V",
});

/** The original simulator's three metrics; the default keeps existing consumers unchanged. */
export const DEFAULT_KINDS: readonly SensorKind[] = Object.freeze(["temperature", "humidity", "battery"]);

export function isSensorKind(v: string): v is SensorKind {
  return (SENSOR_KINDS as readonly string[]).includes(v);
}

/** One reading cycle of one sensor: the values of the kinds it has. */
export interface SimulatedSample {
  sensorId: string;
  /** 1-based index of this sensor's reading cycle. */
  n: number;
  /** Time on the sensor's own clock (epoch ms): what it reports, drift included. */
  ts: number;
  temperature?: number;
  humidity?: number;
  light?: number;
  pressure?: number;
  battery?: number;
  /** The battery is flat: the sensor took this turn but cannot transmit. */
  silent?: true;
}

/** A sensor-agnostic message: what every output encoder works from (simulator and replay). */
export interface Measurement {
  metric: string;
  value: number;
  unit?: string;
}

export interface SensorMessage {
  sensorId: string;
  /** Sensor time, epoch ms; absent when the source had none. */
  ts?: number;
  metrics: Measurement[];
}

export function sampleToMessage(s: SimulatedSample, kinds: readonly SensorKind[]): SensorMessage {
  const metrics: Measurement[] = [];
  for (const k of kinds) {
    const value = s[k];
    if (value !== undefined) metrics.push({ metric: k, value, unit: KIND_UNITS[k] });
  }
  return { sensorId: s.sensorId, ts: s.ts, metrics };
}
