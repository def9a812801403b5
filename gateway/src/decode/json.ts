import { DEFAULT_UNITS, DecodeError, type DecodedReading } from "@datalab/shared";
import { parseTimestamp, typeName } from "./timestamp";

/**
 * JSON payloads from MQTT (and JSON-lines radios), in the shapes the DataLab accepts:
 *  - the original DataLab message: {"name": "sensor1", "value": 5.1}
 *  - one sensor, several metrics: {"sensor": "s1", "temperature": 21.3, "humidity": 40, "ts": 1764270000}
 *  - SenML JSON arrays (RFC 8428)
 * The sensor id may also come from the topic (`sensors/<id>`) when the payload has none.
 */
export interface JsonContext {
  /** Sensor id implied by where the message came from (e.g. the last topic level), if any. */
  sensorIdHint?: string | undefined;
}

const ID_KEYS = ["sensor", "sensorId", "sensor_id", "id", "device", "name"] as const;
const TIME_KEYS = ["ts", "time", "timestamp"] as const;
/** Descriptive keys a device may add; strings there are metadata, not values. */
const META_KEYS = new Set(["unit", "units", "type", "model", "location", "room", "fw", "firmware", "meta", "rssi_unit"]);

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DecodeError("not_json", `payload is not valid JSON (${(err as Error).message})${jsonHint(text)}`, { cause: err });
  }
}

/** Say what a person most likely got wrong. */
function jsonHint(text: string): string {
  if (/^\s*[[{]/.test(text) && /'[^']*'\s*:/.test(text)) {
    return ": JSON needs double quotes around keys and strings, e.g. {\"name\": \"sensor1\"}, not single quotes";
  }
  if (/\b(NaN|-?Infinity)\b/.test(text)) return ": NaN and Infinity are not JSON numbers";
  return "";
}

export function decodeJsonValue(doc: unknown, ctx: JsonContext = {}): DecodedReading[] {
  if (Array.isArray(doc)) return decodeSenml(doc);
  if (doc === null || typeof doc !== "object") {
    throw new DecodeError("wrong_shape", `expected a JSON object or a SenML array, got ${typeName(doc)}`);
  }
  return decodeObject(doc as Record<string, unknown>, ctx);
}

function decodeObject(o: Record<string, unknown>, ctx: JsonContext): DecodedReading[] {
  let ts: number | undefined;
  for (const k of TIME_KEYS) {
    if (o[k] !== undefined) {
      ts = parseTimestamp(o[k], k);
      break;
    }
  }
  // The original DataLab message: name + value.
  if ("value" in o && "name" in o && !("sensor" in o) && !("sensorId" in o)) {
    const sensorId = idOf(o.name, "name");
    const value = numberOf(o.value, "value");
    const unit = typeof o.unit === "string" ? o.unit : undefined;
    return [withTs({ sensorId, metric: "value", value, ...(unit ? { unit } : {}) }, ts)];
  }
  let sensorId: string | undefined;
  let idKey: string | undefined;
  for (const k of ID_KEYS) {
    if (o[k] !== undefined) {
      sensorId = idOf(o[k], k);
      idKey = k;
      break;
    }
  }
  sensorId ??= ctx.sensorIdHint;
  if (sensorId === undefined) {
    throw new DecodeError("wrong_shape", `no sensor id: expected one of the keys ${ID_KEYS.map((k) => `"${k}"`).join(", ")} (or a topic sensors/<id>)`);
  }
  const units = o.units !== null && typeof o.units === "object" ? (o.units as Record<string, unknown>) : {};
  const out: DecodedReading[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (k === idKey || (TIME_KEYS as readonly string[]).includes(k)) continue;
    if (META_KEYS.has(k) && typeof v !== "number" && typeof v !== "boolean") continue;
    const value = numberOf(v, k);
    const unit = typeof units[k] === "string" ? (units[k] as string) : DEFAULT_UNITS[k];
    out.push(withTs({ sensorId, metric: k, value, ...(unit ? { unit } : {}) }, ts));
  }
  if (out.length === 0) throw new DecodeError("no_readings", `message for sensor "${sensorId}" carries no numeric values`);
  return out;
}

function withTs(r: DecodedReading, ts: number | undefined): DecodedReading {
  if (ts !== undefined) r.ts = ts;
  return r;
}

function idOf(v: unknown, key: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  throw new DecodeError("bad_sensor_id", `"${key}" must be a string, got ${typeName(v)}`);
}

/** Values must be finite numbers; booleans become 0/1. Strings are refused, not parsed. */
function numberOf(v: unknown, key: string): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new DecodeError("bad_value", `"${key}" is not a finite number`);
    return v;
  }
  if (typeof v === "boolean") return v ? 1 : 0;
  throw new DecodeError("bad_value", `"${key}" must be a number, got ${typeName(v)}`);
}

/**
 * SenML (RFC 8428): base fields (bn, bt, bu, bv) carry over to later records; times are
 * seconds, and a resolved time below 2^28 is relative to now (§4.5.3). Records with string,
 * data or no values are not readings; a pack with no numeric record at all is refused.
 */
function decodeSenml(pack: unknown[], now = Date.now()): DecodedReading[] {
  if (pack.length === 0) throw new DecodeError("no_readings", "empty SenML array");
  let bn = "";
  let bt = 0;
  let bu: string | undefined;
  let bv = 0;
  const out: DecodedReading[] = [];
  for (const [i, rec] of pack.entries()) {
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) {
      throw new DecodeError("wrong_shape", `SenML record ${i} is ${typeName(rec)}, expected an object`);
    }
    const r = rec as Record<string, unknown>;
    if (r.bn !== undefined) bn = stringOf(r.bn, `record ${i} "bn"`);
    if (r.bt !== undefined) bt = numberOf(r.bt, `record ${i} "bt"`);
    if (r.bu !== undefined) bu = stringOf(r.bu, `record ${i} "bu"`);
    if (r.bv !== undefined) bv = numberOf(r.bv, `record ${i} "bv"`);
    let value: number | undefined;
    if (r.v !== undefined) value = numberOf(r.v, `record ${i} "v"`) + bv;
    else if (r.vb !== undefined) {
      if (typeof r.vb !== "boolean") throw new DecodeError("bad_value", `record ${i} "vb" must be true or false`);
      value = r.vb ? 1 : 0;
    }
    if (value === undefined) continue;
    const name = bn + (r.n === undefined ? "" : stringOf(r.n, `record ${i} "n"`));
    if (name === "") throw new DecodeError("bad_sensor_id", `SenML record ${i} has no name (bn + n)`);
    const t = bt + (r.t === undefined ? 0 : numberOf(r.t, `record ${i} "t"`));
    const ts = t === 0 ? undefined : t < 2 ** 28 ? now + t * 1000 : parseTimestamp(t, `record ${i} time`);
    const [sensorId, metric] = splitSenmlName(bn, name);
    const unit = r.u !== undefined ? stringOf(r.u, `record ${i} "u"`) : bu;
    out.push(withTs({ sensorId, metric, value, ...(unit ? { unit } : {}) }, ts === undefined ? undefined : Math.round(ts)));
  }
  if (out.length === 0) throw new DecodeError("no_readings", "SenML array has no numeric values");
  return out;
}

/** `bn` names the device, `n` the measurement; without `bn`, split at the last `/` or `:`. */
function splitSenmlName(bn: string, name: string): [string, string] {
  if (bn !== "" && name.length > bn.length) return [bn.replace(/[:/._-]+$/, "") || bn, name.slice(bn.length)];
  const cut = Math.max(name.lastIndexOf("/"), name.lastIndexOf(":"));
  if (cut > 0 && cut < name.length - 1) return [name.slice(0, cut), name.slice(cut + 1)];
  return [name, "value"];
}

function stringOf(v: unknown, what: string): string {
  if (typeof v !== "string") throw new DecodeError("wrong_shape", `${what} must be a string, got ${typeName(v)}`);
  return v;
}
