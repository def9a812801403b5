import { describe, expect, it } from "vitest";
import { escapeBytes, XBeeFrame, xbeeChecksum } from "../../src/protocols/index";
import { hex } from "./helpers";
import { xbeeFixtureRows } from "./xbee-fixtures";

describe("XBeeFrame.fromBuffer / toBuffer", () => {
  const rows = xbeeFixtureRows().filter((r) => r.frameType !== "0x92+0x92");

  it.each(rows.map((r) => [r.row, r.frameType, r] as const))("fixture row %i (%s)", (_row, _type, r) => {
    const parsed = XBeeFrame.fromBuffer(r.bytes, r.mode);
    if (r.summary.startsWith("NEGATIVE CASE")) {
      expect(parsed).toMatchObject({ ok: false, reason: "bad_checksum" });
      return;
    }
    if (!parsed.ok) throw new Error(parsed.message);
    expect(`0x${parsed.frame.type.toString(16).toUpperCase()}`).toBe(r.frameType);
    // Re-encoding gives back the exact bytes, escaping included.
    expect(parsed.frame.toBuffer(r.mode).equals(r.bytes)).toBe(true);
  });

  it("computes the checksum as 0xFF minus the low byte of the sum (Digi example)", () => {
    // Modem status "coordinator started": 7E 00 02 8A 06 6F
    expect(xbeeChecksum(hex("8A06"))).toBe(0x6f);
  });

  it("escapes 0x7E, 0x7D, 0x11 and 0x13 in API mode 2", () => {
    expect(escapeBytes(hex("7E7D1113 00"))).toEqual(hex("7D5E 7D5D 7D31 7D33 00"));
    const frame = new XBeeFrame(0x8b, hex("7D 2A6A 000000"));
    expect(frame.toBuffer(2)).toEqual(hex("7E00078B7D5D2A6A00000063"));
  });

  it.each([
    ["no start byte", "00 0002 8A06 6F", 1, "bad_field"],
    ["bad checksum", "7E 0002 8A06 70", 1, "bad_checksum"],
    ["short", "7E 0005 8A06 6F", 1, "truncated_frame"],
    ["long", "7E 0002 8A06 6F 00", 1, "bad_length"],
    ["zero length", "7E 0000 FF", 1, "bad_length"],
    ["header only", "7E 00", 1, "truncated_frame"],
    ["mode 2, raw 7E inside", "7E 0002 7E 06 6F", 2, "truncated_frame"],
    ["mode 2, ends in escape", "7E 0002 8A06 7D", 2, "truncated_frame"],
  ] as const)("rejects %s", (_name, bytes, mode, reason) => {
    expect(XBeeFrame.fromBuffer(hex(bytes), mode)).toMatchObject({ ok: false, reason });
  });
});
