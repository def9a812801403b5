import { z } from "zod";

/**
 * Sensor and metric names end up in SQL rows, MQTT topics, log lines and dashboards.
 * Control characters in them break every one of those, so they are refused at the door.
 */
// Built-in checks (regex, min, max) rather than refine(): zod runs them in its compiled
// fast path, which matters at one validation per reading.
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f-\u009f]*$/;
/**
 * Well-formed UTF-16: every surrogate in a pair. A lone surrogate cannot be encoded as UTF-8:
 * node-postgres turns it into U+FFFD (so "\udc00" and "\udc01" would become one sensor) and
 * Postgres' jsonb refuses its escape, so it is refused here, with a reason, instead.
 */
const WELL_FORMED = /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/;

export const SensorId = z
  .string()
  .min(1, "sensor id is empty")
  .max(128, "sensor id is longer than 128 characters")
  .regex(NO_CONTROL_CHARS, "sensor id contains control characters")
  .regex(WELL_FORMED, "sensor id contains a lone surrogate (not valid Unicode text)");

export const MetricName = z
  .string()
  .min(1, "metric name is empty")
  .max(64, "metric name is longer than 64 characters")
  .regex(NO_CONTROL_CHARS, "metric name contains control characters")
  .regex(WELL_FORMED, "metric name contains a lone surrogate (not valid Unicode text)");

export const UnitName = z
  .string()
  .max(32, "unit is longer than 32 characters")
  .regex(NO_CONTROL_CHARS, "unit contains control characters")
  .regex(WELL_FORMED, "unit contains a lone surrogate (not valid Unicode text)");

/** Where a message came from (`mqtt:<topic>`, `serial:<port>:<format>`): a column of every reading row. */
export const MessageSource = z
  .string()
  .max(512, "source is longer than 512 characters")
  .regex(NO_CONTROL_CHARS, "source contains control characters")
  .regex(WELL_FORMED, "source contains a lone surrogate (not valid Unicode text)");

/** The gateway's random instance id (part of every reading's key). */
export const InstanceId = z
  .string()
  .min(1, "instance is empty")
  .max(128, "instance is longer than 128 characters")
  .regex(NO_CONTROL_CHARS, "instance contains control characters")
  .regex(WELL_FORMED, "instance contains a lone surrogate (not valid Unicode text)");

/**
 * The largest magnitude a value may have. Postgres' float8 avg() keeps a sum of squared
 * deviations and raises "value out of range: overflow" once it exceeds 1.8e308: two readings
 * 2e154 apart break every bucketed query over them. At 1e100 a bucket can hold 1e107
 * readings; no physical quantity comes near it.
 */
export const MAX_ABS_VALUE = 1e100;

/** zod 4's number() refuses NaN and ±Infinity itself. */
export const FiniteNumber = z
  .number({ error: "expected a finite number" })
  .min(-MAX_ABS_VALUE, `value is below -${MAX_ABS_VALUE}`)
  .max(MAX_ABS_VALUE, `value is above ${MAX_ABS_VALUE}`);

/** Epoch milliseconds, between 1970 and 2200: anything else is a unit mistake, not a time. */
export const EpochMillis = z
  .number()
  .int()
  .min(0, "timestamp before 1970")
  .max(7_258_118_400_000, "timestamp after 2200");

/**
 * Present on a reading whose `ts` is the gateway's receive time rather than the sensor's own:
 * readings of the same sensor, metric and value within this many ms of one stored are the
 * same measurement (a radio's repeats, a second gateway in range); 0 folds none. Absent: `ts`
 * is the sensor's time, and sensor, metric and ts alone identify the measurement.
 */
export const MAX_RX_WINDOW_MS = 3_600_000;
export const RxWindow = z.number().int().min(0).max(MAX_RX_WINDOW_MS);

/**
 * What a decoder produces from one incoming message: a value for one metric of one sensor.
 * `ts` is the sensor's own time when the message carried one; the gateway fills in the
 * receive time otherwise.
 */
export const DecodedReading = z.object({
  sensorId: SensorId,
  metric: MetricName,
  value: FiniteNumber,
  unit: UnitName.optional(),
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
  unit: UnitName.nullable(),
  ts: EpochMillis,
  receivedAt: EpochMillis,
  source: MessageSource,
  rxWindow: RxWindow.optional(),
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
