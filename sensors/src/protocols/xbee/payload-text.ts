import { metricNameProblem } from "../common/names";
import { parseDecimal } from "../common/numbers";

/**
 * What a sketch put in a 0x90 payload. Two text forms are read:
 * - a JSON object: `{"temperature": 21.5, "humidity": 40}`;
 * - key=value pairs separated by `,` `;` `&` or whitespace: `t=21.5,h=40`, `a=1&b=2`.
 * Pairs with a non-numeric value (`status=ok`) are skipped like JSON strings are; a token
 * without `=` makes the whole payload unreadable, because guessing which number is which
 * would store wrong data. Binary payloads are refused outright.
 */
export type TextPayload =
  | { readonly ok: true; readonly form: "json"; readonly object: Readonly<Record<string, unknown>> }
  | {
      readonly ok: true;
      readonly form: "pairs";
      readonly pairs: ReadonlyArray<readonly [string, number]>;
      readonly ts?: string;
    }
  | { readonly ok: false; readonly message: string };

const SEPARATORS = /[,;&\s]+/;

export function parseTextPayload(data: Uint8Array): TextPayload {
  let end = data.length;
  // C strings sent with their terminator: sizeof(buf) instead of strlen(buf) is a common slip.
  while (end > 0 && data[end - 1] === 0) end--;
  for (let i = 0; i < end; i++) {
    const b = data[i]!;
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f) {
      return { ok: false, message: `binary payload (byte 0x${b.toString(16).padStart(2, "0")} at ${i})` };
    }
  }
  const text = Buffer.from(data.buffer, data.byteOffset, end).toString("utf8").trim();
  if (text === "") return { ok: false, message: "empty payload" };

  if (text.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { ok: false, message: `payload starts with "{" but is not JSON: ${(err as Error).message}` };
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return { ok: false, message: "payload JSON is not an object" };
    }
    return { ok: true, form: "json", object: value as Record<string, unknown> };
  }

  const pairs: Array<readonly [string, number]> = [];
  let ts: string | undefined;
  for (const token of text.split(SEPARATORS)) {
    if (token === "") continue;
    const eq = token.indexOf("=");
    if (eq <= 0)
      return {
        ok: false,
        message: `payload ${JSON.stringify(text.slice(0, 40))} is neither a JSON object nor key=value pairs`,
      };
    const key = token.slice(0, eq);
    const valueText = token.slice(eq + 1);
    const problem = metricNameProblem(key);
    if (problem) return { ok: false, message: `${problem}: ${JSON.stringify(key.slice(0, 40))}` };
    if (key === "ts") {
      ts = valueText;
      continue;
    }
    const value = parseDecimal(valueText);
    if (value !== undefined) pairs.push([key, value]);
  }
  return ts === undefined ? { ok: true, form: "pairs", pairs } : { ok: true, form: "pairs", pairs, ts };
}
