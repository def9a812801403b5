import { EncodeError } from "../common/errors";
import type { JsonObject } from "../jsonl/frame";
import { Rtl433Event } from "./frame";

/**
 * One `rtl_433 -F json` line for simulators: `{"time": ..., "model": ..., <fields>}`.
 * rtl_433 prints `time` and `model` first; JSON key order is kept, so callers get the same.
 */
export function encodeRtl433(fields: Readonly<JsonObject> & { readonly model: string }): Buffer {
  const event = Rtl433Event.fromObject(fields);
  if (!event.ok) throw new EncodeError(`not an rtl_433 event: ${event.message}`);
  return event.frame.toBuffer();
}
