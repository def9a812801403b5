import { frameError, frameOk, type FrameResult } from "../common/result";
import { typeOf } from "../common/numbers";
import { asBuffer } from "../common/parser";

export type JsonObject = Record<string, unknown>;

/** One line of JSON Lines (https://jsonlines.org/) whose value is an object. */
export class JsonLine {
  constructor(readonly value: Readonly<JsonObject>) {}

  /** Parses one line (without its newline). Anything but a JSON object is refused. */
  static fromBuffer(line: Uint8Array): FrameResult<JsonLine> {
    return JsonLine.fromText(asBuffer(line).toString("utf8"));
  }

  static fromText(text: string): FrameResult<JsonLine> {
    // A UTF-8 byte order mark is legal at the start of a file and invisible in an editor.
    const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (err) {
      return frameError("not_json", `not JSON: ${(err as Error).message}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return frameError("not_object", `JSON value is ${typeOf(value)}, expected an object`);
    }
    return frameOk(new JsonLine(value as JsonObject));
  }

  /** The line as bytes, with its `\n`. */
  toBuffer(): Buffer {
    return Buffer.from(`${JSON.stringify(this.value)}\n`, "utf8");
  }
}
