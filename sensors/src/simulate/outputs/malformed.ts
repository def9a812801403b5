import { Prng } from "../samples/prng";

/**
 * Ways a payload arrives damaged. Each variant is something a real deployment sends:
 * - single_quotes: Python's str(dict) instead of json.dumps, the original DataLab's known case;
 * - truncated: a frame cut short (buffer full, reset mid-send);
 * - nan: a firmware printing NaN for a failed read, which JSON does not allow;
 * - string_value: a number sent as a string ("21.5");
 * - empty: a publish with no payload;
 * - garbage: line noise, bytes that are not text.
 */
export const JSON_MALFORMED = ["single_quotes", "truncated", "nan", "string_value", "empty", "garbage"] as const;
/** For line protocols: an empty line or a string value is not an error there, so those are left out. */
export const JSON_LINE_MALFORMED = ["single_quotes", "truncated", "nan", "garbage"] as const;

export function pickVariant<T extends string>(variants: readonly T[], variant: number): T {
  return variants[variant % variants.length]!;
}

/** `obj` damaged as `variant`; `firstMetric` is the key whose value the value variants spoil. */
export function malformJson(
  obj: Record<string, unknown>,
  firstMetric: string | undefined,
  variant: string,
  at: number,
): Buffer {
  switch (variant) {
    case "single_quotes":
      return Buffer.from(JSON.stringify(obj).replaceAll('"', "'"));
    case "truncated": {
      // An object's text without its closing brace is never valid JSON, wherever it is cut.
      const text = JSON.stringify(obj);
      return Buffer.from(text.slice(0, 1 + Math.floor(at * (text.length - 2))));
    }
    case "nan": {
      if (firstMetric === undefined) return Buffer.from("NaN");
      const marker = "\u0000nan\u0000";
      return Buffer.from(JSON.stringify({ ...obj, [firstMetric]: marker }).replace(JSON.stringify(marker), "NaN"));
    }
    case "string_value":
      return Buffer.from(
        JSON.stringify(firstMetric === undefined ? obj : { ...obj, [firstMetric]: String(obj[firstMetric]) }),
      );
    case "empty":
      return Buffer.alloc(0);
    default:
      return garbage(at);
  }
}

/** 8–23 bytes in 0x80..0xFF: never a newline, never JSON, never a MySensors header field. */
export function garbage(at: number): Buffer {
  const rng = new Prng(Math.floor(at * 2 ** 32));
  const out = Buffer.alloc(8 + Math.floor(rng.next() * 16));
  for (let i = 0; i < out.length; i++) out[i] = 0x80 + Math.floor(rng.next() * 0x80);
  return out;
}
