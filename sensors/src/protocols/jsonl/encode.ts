import { JsonLine, type JsonObject } from "./frame";

/** One JSON line, `\n` included, as a microcontroller would print it. */
export function encodeJsonl(value: Readonly<JsonObject>): Buffer {
  return new JsonLine(value).toBuffer();
}
