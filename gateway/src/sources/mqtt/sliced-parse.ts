/**
 * mqtt.js parses all a socket read holds (up to 64 KiB: some 700 of a flood's PUBLISH packets)
 * into a queue before it hands the first one on, then hands them on one per tick. Under a
 * flood the young generation's collections ran while that queue was full, so every packet,
 * its payload and its topic were copied twice and promoted: the largest share of what those
 * collections copied. The bundle's copy of mqtt.js parses the read in slices instead, each
 * slice's packets handed on before the next is parsed; packets, order and errors are the same.
 */

/** Bytes parsed before the packets they hold are handed on: a few dozen small PUBLISH packets. */
export const PARSE_SLICE_BYTES = 4096;

const ORIGINAL = new RegExp(
  String.raw`(\n(\s*)writable\._write = \(buf, enc, done\) => \{\n\s*completeParse = done;\n)([^\n]*\n)` +
    String.raw`\s*parser\.parse\(buf\);\n\s*work\(\);\n(\s*)\};`,
);

/**
 * mqtt.js's client.js (`build/lib/client.js`) with its stream's `_write` parsing in slices.
 * Throws when the code is not the one this was written for, so that a new mqtt.js fails the
 * bundle's build instead of running unpatched or wrongly patched.
 */
export function sliceParse(clientJs: string): string {
  const m = ORIGINAL.exec(clientJs);
  if (!m || ORIGINAL.exec(clientJs.slice(m.index + m[0].length)))
    throw new Error("mqtt.js client.js: its writable._write is not the one sliced-parse.ts patches");
  const [whole, , indent] = m;
  const i = indent!;
  const patched =
    `\n${i}writable._write = (buf, enc, done) => {\n` +
    `${i}    let at = 0;\n` +
    `${i}    const step = () => {\n` +
    `${i}        if (at >= buf.length) return done();\n` +
    `${i}        const end = Math.min(buf.length, at + ${PARSE_SLICE_BYTES});\n` +
    `${i}        completeParse = step;\n` +
    `${i}        parser.parse(at === 0 && end === buf.length ? buf : buf.subarray(at, end));\n` +
    // A parse error ends the read, as it ends an unsliced parse; the packets before it go on.
    `${i}        at = parser.error ? buf.length : end;\n` +
    `${i}        work();\n` +
    `${i}    };\n` +
    `${i}    step();\n` +
    `${i}};`;
  return clientJs.slice(0, m.index) + patched + clientJs.slice(m.index + whole.length);
}
