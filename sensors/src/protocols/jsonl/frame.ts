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

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One DataLab JSON message: an object (one sensor, several metrics) or a SenML array. The
 * same bytes make the same frame from an MQTT payload, a serial line or a line of stdin.
 * Bytes that are not UTF-8 are refused rather than read with replacement characters, which
 * would make distinct sensor ids collapse into one.
 */
export class DataLabJson {
  constructor(readonly value: Readonly<JsonObject> | readonly unknown[]) {}

  static fromBuffer(bytes: Uint8Array): FrameResult<DataLabJson> {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      return frameError("not_utf8", "payload is not valid UTF-8 text");
    }
    return DataLabJson.fromText(text);
  }

  static fromText(text: string): FrameResult<DataLabJson> {
    const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (err) {
      if (source.trim() === "") return frameError("empty", "payload is only whitespace");
      return frameError("not_json", `payload is not valid JSON (${(err as Error).message})${jsonHint(source)}`);
    }
    if (typeof value !== "object" || value === null) {
      return frameError("wrong_shape", `expected a JSON object or a SenML array, got ${describe(value)}`);
    }
    return frameOk(new DataLabJson(value as JsonObject | unknown[]));
  }

  toBuffer(): Buffer {
    return Buffer.from(`${JSON.stringify(this.value)}\n`, "utf8");
  }
}

/** Say what a person most likely got wrong (only on the error path: no cost for valid input). */
function jsonHint(text: string): string {
  if (/^\s*[[{]/.test(text) && /'[^']*'\s*:/.test(text)) {
    return ': JSON needs double quotes around keys and strings, e.g. {"name": "sensor1"}, not single quotes';
  }
  if (/\b(NaN|-?Infinity)\b/.test(text)) return ": NaN and Infinity are not JSON numbers";
  return "";
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `a ${typeof v}`;
}
