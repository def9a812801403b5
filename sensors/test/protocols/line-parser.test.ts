import { describe, expect, it } from "vitest";
import { JsonlParser, MySensorsParser } from "../../src/protocols/index";
import { errorsOf, feed, framesOf, splitAt } from "./helpers";

const line = (s: string) => Buffer.from(`${s}\n`);

describe("LineParser (via JsonlParser and MySensorsParser)", () => {
  it("joins a line split across two chunks", () => {
    const p = new JsonlParser();
    expect(p.push(Buffer.from('{"sensor":"a",'))).toEqual([]);
    expect(p.bufferedBytes).toBe(14);
    const out = p.push(Buffer.from('"t":1}\n'));
    expect(framesOf(out).map((f) => f.value)).toEqual([{ sensor: "a", t: 1 }]);
    expect(p.bufferedBytes).toBe(0);
  });

  it("gives the same result for a split at every byte position", () => {
    const bytes = Buffer.concat([line('{"sensor":"a","t":1}'), line("garbage"), line('{"sensor":"b","t":2}')]);
    const whole = feed(new JsonlParser(), [bytes]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(feed(new JsonlParser(), splitAt(bytes, [cut])), `cut at ${cut}`).toEqual(whole);
    }
    // and one byte at a time
    expect(
      feed(
        new JsonlParser(),
        [...bytes].map((b) => Buffer.of(b)),
      ),
    ).toEqual(whole);
  });

  it("strips CR and skips blank lines, raw excludes the terminator", () => {
    const out = feed(new MySensorsParser(), [Buffer.from("\r\n  \n46;0;1;0;0;20.3\r\n\n")]);
    expect(out).toHaveLength(1);
    expect(out[0]!.raw.toString()).toBe("46;0;1;0;0;20.3");
  });

  it("reports an over-long line once, keeps only max bytes, and resyncs at the next newline", () => {
    const p = new MySensorsParser({ maxLineLength: 16 });
    const long = "9".repeat(40);
    const out = [
      ...p.push(Buffer.from(long.slice(0, 10))),
      ...p.push(Buffer.from(long.slice(10, 30))),
      ...p.push(Buffer.from(`${long.slice(30)}\n1;2;1;0;0;5\n`)),
    ];
    expect(errorsOf(out).map((e) => e.reason)).toEqual(["line_too_long"]);
    expect(errorsOf(out)[0]!.raw).toHaveLength(16);
    expect(framesOf(out).map((m) => m.payload)).toEqual(["5"]);
    expect(p.bufferedBytes).toBe(0);
  });

  it("reports an over-long line that arrives in one chunk", () => {
    const out = feed(new JsonlParser({ maxLineLength: 8 }), [Buffer.from('{"a":123456789}\n{"b":1}\n')]);
    expect(out.map((r) => (r.kind === "error" ? r.reason : "frame"))).toEqual(["line_too_long", "frame"]);
  });

  it("never buffers more than maxLineLength bytes", () => {
    const p = new JsonlParser({ maxLineLength: 100 });
    for (let i = 0; i < 50; i++) {
      p.push(Buffer.alloc(37, 0x41));
      expect(p.bufferedBytes).toBeLessThanOrEqual(100);
    }
  });

  it("parses an unterminated JSON last line on flush (self-delimiting)", () => {
    expect(framesOf(feed(new JsonlParser(), [Buffer.from('{"sensor":"a","t":1}')]))).toHaveLength(1);
    expect(errorsOf(feed(new JsonlParser(), [Buffer.from('{"sensor":"a","t":')]))[0]!.reason).toBe("not_json");
  });

  it("reports an unterminated MySensors last line as truncated (20 may be the start of 20.5)", () => {
    const out = feed(new MySensorsParser(), [Buffer.from("46;0;1;0;0;20")]);
    expect(out).toMatchObject([{ kind: "error", reason: "truncated_frame" }]);
  });

  it("stays usable after flush()", () => {
    const p = new JsonlParser();
    p.push(Buffer.from('{"x":'));
    p.flush();
    expect(framesOf(p.push(line('{"sensor":"a","t":1}')))).toHaveLength(1);
  });

  it("rejects bad options with a named error", () => {
    expect(() => new JsonlParser({ maxLineLength: 0 })).toThrowError(/maxLineLength/);
  });
});
