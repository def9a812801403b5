import { MAX_ABS_VALUE, type DecodedReading } from "@datalab/shared/reading";
import { metricNameProblem, sensorIdProblem } from "../common/names";
import { parseDecimal, toEpochMillis } from "../common/numbers";
import { decodeError, ignoredResult, readingsResult, type CodecErrorReason, type DecodeResult } from "../common/result";
import { splitUnitSuffix, type FieldNote } from "../common/units";
import { describe, type JsonObject } from "./frame";

/**
 * DataLab JSON, the one decoder for it whatever carried the bytes (an MQTT payload, a line
 * from a serial radio, a line of stdin):
 *  - the original DataLab message: {"name": "sensor1", "value": 5.1}
 *  - one sensor, several metrics: {"sensor": "s1", "temperature": 21.3, "humidity": 40, "ts": 1764270000}
 *  - SenML JSON arrays (RFC 8428).
 * Units come from the message only: a `"units": {metric: unit}` map, a key suffix
 * (`pressure_hPa`), SenML `u`/`bu`, or `"unit"` beside the original form's `"value"`.
 * A numeric field without one is stored with an unknown unit and noted (`unit_unknown`).
 */
export interface DataLabJsonOptions {
  /** Sensor id implied by where the message came from (the last MQTT topic level), used when the message names none. */
  readonly sensorIdHint?: string | undefined;
  /** Sensor id fixed by the carrier (an XBee's 64-bit address): id keys in the message are then metadata. */
  readonly sensorId?: string | undefined;
  /** For SenML times relative to now (RFC 8428 §4.5.3). */
  readonly now?: () => number;
}

/** Keys that name the sensor, in order of preference. */
export const SENSOR_KEYS = ["sensor", "sensorId", "sensor_id", "id", "device", "name"] as const;
/** Keys of the sensor's own time: epoch seconds, epoch ms, or ISO 8601 with a zone. */
export const TIME_KEYS = ["ts", "time", "timestamp"] as const;
const RESERVED = new Set<string>([...SENSOR_KEYS, ...TIME_KEYS]);
/** Descriptive keys a device may add; strings there are metadata, not values. */
const META_KEYS = new Set([
  "unit",
  "units",
  "type",
  "model",
  "location",
  "room",
  "fw",
  "firmware",
  "meta",
  "rssi_unit",
]);

class Refused extends Error {
  constructor(
    readonly reason: CodecErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export function decodeDataLabJson(
  value: Readonly<JsonObject> | readonly unknown[],
  options: DataLabJsonOptions = {},
): DecodeResult {
  try {
    return Array.isArray(value)
      ? decodeSenml(value, options.now ?? Date.now)
      : decodeObject(value as Readonly<JsonObject>, options);
  } catch (err) {
    if (err instanceof Refused) return decodeError(err.reason, err.message);
    throw err;
  }
}

/** The JSON-lines radio's decoder: the same as MQTT's (no topic, so no sensor id hint). */
export function decodeJsonl(frame: { readonly value: Readonly<JsonObject> | readonly unknown[] }): DecodeResult {
  return decodeDataLabJson(frame.value);
}

function decodeObject(o: Readonly<JsonObject>, options: DataLabJsonOptions): DecodeResult {
  let ts: number | undefined;
  let timeKey: string | undefined;
  for (const k of TIME_KEYS) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    const parsed = toEpochMillis(v);
    if (!parsed.ok) throw new Refused("bad_timestamp", `"${k}": ${parsed.message}`);
    ts = parsed.ts;
    timeKey = k;
    break;
  }
  // The original DataLab message names its sensor with "name" and carries "value".
  const original =
    o["value"] !== undefined && o["name"] !== undefined && o["sensor"] === undefined && o["sensorId"] === undefined;
  let sensorId: string | undefined = options.sensorId;
  let idKey: string | undefined;
  if (sensorId !== undefined) {
    // fixed by the carrier
  } else if (original) {
    sensorId = idOf(o["name"], "name");
    idKey = "name";
  } else {
    for (const k of SENSOR_KEYS) {
      const v = o[k];
      if (v === undefined || v === null) continue;
      sensorId = idOf(v, k);
      idKey = k;
      break;
    }
  }
  sensorId ??= options.sensorIdHint;
  if (sensorId === undefined) {
    throw new Refused(
      "wrong_shape",
      `no sensor id: expected one of the keys ${SENSOR_KEYS.map((k) => `"${k}"`).join(", ")} (or a topic sensors/<id>)`,
    );
  }
  const idProblem = sensorIdProblem(sensorId);
  if (idProblem) throw new Refused("bad_sensor_id", idProblem);

  const unitsValue = o["units"];
  const units =
    unitsValue !== null && typeof unitsValue === "object" && !Array.isArray(unitsValue)
      ? (unitsValue as JsonObject)
      : undefined;
  const out: DecodedReading[] = [];
  let notes: FieldNote[] | undefined;
  /** Metrics emitted so far; only built once a key states its unit by suffix (two keys may then name one metric). */
  let seen: Set<string> | undefined;
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (RESERVED.has(k)) {
      // Another id or time key than the one used: a number there is accounted for, not stored.
      if (k !== idKey && k !== timeKey && typeof v === "number") (notes ??= []).push({ field: k, outcome: "metadata" });
      continue;
    }
    if (typeof v === "string") {
      if (META_KEYS.has(k)) continue;
      // A number sent as text: refused with the fix, rather than skipped as a label.
      if (parseDecimal(v) !== undefined)
        throw new Refused("bad_value", `"${k}" must be a JSON number, got ${describe(v)}`);
      continue;
    }
    if (v === null) throw new Refused("bad_value", `"${k}" is null; leave the key out when there is no value`);
    if (typeof v === "object") continue; // nested metadata (the "units" map, "meta": {...})
    let value: number;
    let unit: string | undefined;
    let metric = k;
    if (typeof v === "boolean") {
      value = v ? 1 : 0;
    } else if (typeof v === "number") {
      if (!(v <= MAX_ABS_VALUE && v >= -MAX_ABS_VALUE))
        throw new Refused("bad_value", `"${k}" is ${v}, outside ±${MAX_ABS_VALUE}`);
      value = v;
      const stated = units !== undefined && Object.hasOwn(units, k) ? units[k] : undefined;
      if (typeof stated === "string") unit = stated;
      else if (original && k === "value" && typeof o["unit"] === "string") unit = o["unit"];
      else {
        const suffixed = splitUnitSuffix(k);
        if (suffixed !== undefined) {
          seen ??= new Set(out.map((r) => r.metric));
          metric = suffixed.metric;
          unit = suffixed.unit;
        }
      }
    } else {
      continue;
    }
    const nameProblem = metricNameProblem(metric);
    if (nameProblem) throw new Refused("bad_field", `${nameProblem}: ${JSON.stringify(metric.slice(0, 80))}`);
    if (seen !== undefined) {
      if (seen.has(metric)) {
        (notes ??= []).push({ field: k, outcome: "superseded" });
        continue;
      }
      seen.add(metric);
    }
    if (unit === undefined && typeof v === "number") (notes ??= []).push({ field: k, outcome: "unit_unknown" });
    const r: DecodedReading = { sensorId, metric, value };
    if (unit !== undefined) r.unit = unit;
    if (ts !== undefined) r.ts = ts;
    out.push(r);
  }
  if (out.length === 0)
    return ignoredResult("no_readings", `message for sensor "${sensorId}" carries no numeric values`, notes);
  return readingsResult(out, notes);
}

function idOf(v: unknown, key: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  throw new Refused("bad_sensor_id", `"${key}" must be a string, got ${describe(v)}`);
}

function numberOf(v: unknown, what: string): number {
  if (typeof v === "number") {
    if (!(v <= MAX_ABS_VALUE && v >= -MAX_ABS_VALUE))
      throw new Refused("bad_value", `${what} is ${v}, outside ±${MAX_ABS_VALUE}`);
    return v;
  }
  throw new Refused("bad_value", `${what} must be a number, got ${describe(v)}`);
}

function stringOf(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Refused("wrong_shape", `${what} must be a string, got ${describe(v)}`);
  return v;
}

/** SenML times below 2^28 are relative to now (RFC 8428 §4.5.3). */
const SENML_RELATIVE_LIMIT = 2 ** 28;

/**
 * SenML (RFC 8428): base fields (bn, bt, bu, bv) carry over to later records; times are
 * seconds. Records with string, data or no values are not readings; a pack with no numeric
 * record at all carries no readings.
 */
function decodeSenml(pack: readonly unknown[], now: () => number): DecodeResult {
  if (pack.length === 0) return ignoredResult("no_readings", "empty SenML array");
  let bn = "";
  let bt = 0;
  let bu: string | undefined;
  let bv = 0;
  const out: DecodedReading[] = [];
  let notes: FieldNote[] | undefined;
  for (let i = 0; i < pack.length; i++) {
    const rec = pack[i];
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) {
      throw new Refused("wrong_shape", `SenML record ${i} is ${describe(rec)}, expected an object`);
    }
    const r = rec as JsonObject;
    if (r["bn"] !== undefined) bn = stringOf(r["bn"], `record ${i} "bn"`);
    if (r["bt"] !== undefined) bt = numberOf(r["bt"], `record ${i} "bt"`);
    if (r["bu"] !== undefined) bu = stringOf(r["bu"], `record ${i} "bu"`);
    if (r["bv"] !== undefined) bv = numberOf(r["bv"], `record ${i} "bv"`);
    let value: number | undefined;
    let dimensionless = false;
    if (r["v"] !== undefined) value = numberOf(r["v"], `record ${i} "v"`) + bv;
    else if (r["vb"] !== undefined) {
      if (typeof r["vb"] !== "boolean") throw new Refused("bad_value", `record ${i} "vb" must be true or false`);
      value = r["vb"] ? 1 : 0;
      dimensionless = true;
    }
    if (value === undefined) continue;
    const name = bn + (r["n"] === undefined ? "" : stringOf(r["n"], `record ${i} "n"`));
    if (name === "") throw new Refused("bad_sensor_id", `SenML record ${i} has no name (bn + n)`);
    const t = bt + (r["t"] === undefined ? 0 : numberOf(r["t"], `record ${i} "t"`));
    let ts: number | undefined;
    if (t !== 0) {
      const parsed = toEpochMillis(t < SENML_RELATIVE_LIMIT ? now() + t * 1000 : t);
      if (!parsed.ok) throw new Refused("bad_timestamp", `record ${i} time: ${parsed.message}`);
      ts = parsed.ts;
    }
    const [sensorId, metric] = splitSenmlName(bn, name);
    const idProblem = sensorIdProblem(sensorId);
    if (idProblem) throw new Refused("bad_sensor_id", `SenML record ${i}: ${idProblem}`);
    const nameProblem = metricNameProblem(metric);
    if (nameProblem) throw new Refused("bad_field", `SenML record ${i}: ${nameProblem}`);
    const unit = r["u"] !== undefined ? stringOf(r["u"], `record ${i} "u"`) : bu;
    const reading: DecodedReading = { sensorId, metric, value };
    if (unit !== undefined && unit !== "") reading.unit = unit;
    else if (!dimensionless) (notes ??= []).push({ field: metric, outcome: "unit_unknown" });
    if (ts !== undefined) reading.ts = ts;
    out.push(reading);
  }
  if (out.length === 0) return ignoredResult("no_readings", "SenML array has no numeric values", notes);
  return readingsResult(out, notes);
}

/** `bn` names the device, `n` the measurement; without `bn`, split at the last `/` or `:`. */
function splitSenmlName(bn: string, name: string): [string, string] {
  if (bn !== "" && name.length > bn.length) return [bn.replace(/[:/._-]+$/, "") || bn, name.slice(bn.length)];
  const cut = Math.max(name.lastIndexOf("/"), name.lastIndexOf(":"));
  if (cut > 0 && cut < name.length - 1) return [name.slice(0, cut), name.slice(cut + 1)];
  return [name, "value"];
}
