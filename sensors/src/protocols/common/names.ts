/**
 * Sensor ids and metric names end up in SQL rows, subjects and dashboards; these checks
 * mirror `SensorId` and `MetricName` in shared/src/reading.ts so a decoder never emits a
 * reading the schema would refuse later, far from the frame that caused it.
 */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

export const MAX_SENSOR_ID_LENGTH = 128;
export const MAX_METRIC_LENGTH = 64;

/** Returns a reason the metric name is unusable, or undefined when it is fine. */
export function metricNameProblem(name: string): string | undefined {
  if (name.length === 0) return "metric name is empty";
  if (name.length > MAX_METRIC_LENGTH) return `metric name longer than ${MAX_METRIC_LENGTH} characters`;
  if (CONTROL_CHARS.test(name)) return "metric name contains control characters";
  return undefined;
}

export function sensorIdProblem(id: string): string | undefined {
  if (id.length === 0) return "sensor id is empty";
  if (id.length > MAX_SENSOR_ID_LENGTH) return `sensor id longer than ${MAX_SENSOR_ID_LENGTH} characters`;
  if (CONTROL_CHARS.test(id)) return "sensor id contains control characters";
  return undefined;
}

/**
 * Makes one part of a composed sensor id safe: anything other than letters, digits, `_`, `.`
 * and `-` becomes `-` ("Nexus Temperature" -> "Nexus-Temperature"), runs of `-` collapse.
 */
const SAFE_ID_PART = /^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*$/;

export function sanitizeIdPart(part: string): string {
  if (SAFE_ID_PART.test(part)) return part; // the usual case, e.g. "Acurite-606TX"
  return part
    .replace(/[^A-Za-z0-9_.-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-|-$/g, "");
}
