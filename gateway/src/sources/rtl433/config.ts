import { z } from "zod";
import { type ConfigOf, field } from "@datalab/shared";

/**
 * A command line: an array in the config file, or one string in the environment split on
 * spaces (quotes group words: `rtl_433 -F json -C si -R "19"`). No shell is involved.
 */
export const commandLineSchema = z
  .union([z.string(), z.array(z.string())], { error: "expected a command line" })
  .default([])
  .transform((value, ctx) => {
    if (Array.isArray(value)) return value;
    const words = splitCommandLine(value);
    if (words === undefined) {
      ctx.addIssue({ code: "custom", message: "unbalanced quotes" });
      return z.NEVER;
    }
    return words;
  });

export function splitCommandLine(text: string): string[] | undefined {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: string | undefined;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) return undefined;
  if (inWord) words.push(word);
  return words;
}

export const rtl433Fields = {
  rtl433Command: field(
    "DATALAB_RTL433_CMD",
    commandLineSchema,
    'run rtl_433 as a child process with this command line, e.g. "rtl_433 -F json" (empty: not run); ' +
      "restarted when it exits",
  ),
} as const;

export type Rtl433Config = ConfigOf<typeof rtl433Fields>;
