import { z } from "zod";

/**
 * Sensor and metric names end up in SQL rows, MQTT topics, log lines and dashboards.
 * Control characters in them break every one of those, so they are refused at the door.
 */
// Built-in checks (regex, min, max) rather than refine(): zod runs them in its compiled
// fast path, which matters at one validation per reading.
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f-\u009f]*$/;

export const SensorId = z
  .string()
  .min(1, "sensor id is empty")
  .max(128, "sensor id is longer than 128 characters")
  .regex(NO_CONTROL_CHARS, "sensor id contains control characters");

export const MetricName = z
  .string()
  .min(1, "metric name is empty")
  .max(64, "metric name is longer than 64 characters")
  .regex(NO_CONTROL_CHARS, "metric name contains control characters");

/** zod 4's number() refuses NaN and ±Infinity itself. */
export const FiniteNumber = z.number({ error: "expected a finite number" });

/** Epoch milliseconds, between 1970 and 2200: anything else is a unit mistake, not a time. */
export const EpochMillis = z
  .number()
  .int()
  .min(0, "timestamp before 1970")
  .max(7_258_118_400_000, "timestamp after 2200");

/**
 * What a decoder produces from one incoming message: a value for one metric of one sensor.
 * `ts` is the sensor's own time when the message carried one; the gateway fills in the
 * receive time otherwise.
 */
export const DecodedReading = z.object({
  sensorId: SensorId,
  metric: MetricName,
  value: FiniteNumber,
  unit: z.string().max(32).optional(),
  ts: EpochMillis.optional(),
});
export type DecodedReading = z.infer<typeof DecodedReading>;

/**
 * The canonical record (close to a resolved SenML record, RFC 8428).
 * Its key is (gatewayId, instance, seq): `instance` is a random id the gateway keeps in its
 * database, so a re-flashed SD card starting `seq` again at 1 never collides with old rows.
 */
export const Reading = z.object({
  gatewayId: z.string(),
  instance: z.string(),
  seq: z.number().int().positive(),
  sensorId: SensorId,
  metric: MetricName,
  value: FiniteNumber,
  unit: z.string().max(32).nullable(),
  ts: EpochMillis,
  receivedAt: EpochMillis,
  source: z.string(),
});
export type Reading = z.infer<typeof Reading>;

/** SenML units (RFC 8428 §12.1) for the metrics this project meets most. */
export const DEFAULT_UNITS: Readonly<Record<string, string>> = Object.freeze({
  temperature: "Cel",
  humidity: "%RH",
  light: "lx",
  illuminance: "lx",
  voltage: "V",
  battery: "V",
  battery_voltage: "V",
  battery_level: "%EL",
  pressure: "Pa",
});
