import { objectToReadings } from "../common/object-readings";
import type { DecodeResult } from "../common/result";
import type { JsonLine } from "./frame";

/**
 * Minimal form: `{"sensor"|"id"|"name": ..., <metric>: number, ..., "ts"?: seconds|ms|ISO}`.
 * See `objectToReadings` for the rules. Richer JSON (nested, SenML, per-key units) is the
 * gateway's MQTT JSON decoder's job; point a JSON-lines source at that one if needed.
 */
export function decodeJsonl(frame: JsonLine): DecodeResult {
  return objectToReadings(frame.value);
}
