import { JsonLine, type JsonObject } from "../jsonl/frame";
import { typeOf } from "../common/numbers";
import { frameError, frameOk, type FrameResult } from "../common/result";

/**
 * One rtl_433 event: a line of `rtl_433 -F json`, or the payload of its MQTT `events` topic.
 * rtl_433 has no checksum on this output (the radio-level `mic` was checked by rtl_433 itself);
 * what makes an event valid here is being a JSON object with a `model`.
 */
export class Rtl433Event {
  private constructor(
    readonly model: string,
    readonly fields: Readonly<JsonObject>,
  ) {}

  static fromBuffer(line: Uint8Array): FrameResult<Rtl433Event> {
    const parsed = JsonLine.fromBuffer(line);
    return parsed.ok ? Rtl433Event.fromObject(parsed.frame.value) : parsed;
  }

  /** For events that arrive already parsed (MQTT JSON payloads). */
  static fromObject(fields: Readonly<JsonObject>): FrameResult<Rtl433Event> {
    const model = fields["model"];
    if (model === undefined || model === null) return frameError("missing_field", 'event has no "model"');
    if (typeof model !== "string" || model.trim() === "") {
      return frameError(
        "bad_field",
        `"model" is ${typeOf(model)} ${JSON.stringify(model)}, expected a non-empty string`,
      );
    }
    return frameOk(new Rtl433Event(model, fields));
  }

  toBuffer(): Buffer {
    return new JsonLine(this.fields).toBuffer();
  }
}
