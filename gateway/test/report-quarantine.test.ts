/**
 * The quarantine sample in a gateway's health report stays small whatever was quarantined:
 * at most 10 entries, each payload cut to 1,024 characters of text, all of them within
 * 32 KiB of JSON even when every byte is a control character that JSON escapes to six, so
 * the hub (which refuses reports over 64 KiB) always takes the report.
 */
import { describe, expect, it } from "vitest";
import { GatewayReport, QUARANTINE_SAMPLE } from "@datalab/shared";
import { encodeReport, quarantineSample, type GatewayStatus, type QuarantinedRow } from "../src/status";

const status = {
  gatewayId: "gw-q",
  instance: "i1",
  online: true,
  uplink: null,
  forwarding: { state: "idle", readingsPerSecond: null, etaSeconds: null, maxReadingsPerSec: 0, maxBytesPerSec: 0 },
  sources: [],
  outbox: {
    readings: 0,
    messages: 0,
    bytes: 0,
    fileBytes: 0,
    maxBytes: null,
    policy: null,
    oldestAgeSeconds: null,
    inflight: null,
    path: "x",
  },
  quarantine: { not_json: 12 },
  dropped: {},
  lastError: null,
} as unknown as GatewayStatus;

const row = (payload: Buffer, i = 0): QuarantinedRow => ({
  receivedAt: 1_764_270_000_000 + i,
  source: "mqtt:sensors/x",
  reason: "not_json",
  detail: "d".repeat(2_000),
  payload,
});

describe("quarantine sample in the health report", () => {
  it("cuts a large payload to 1,024 characters and says how large it was", () => {
    const s = quarantineSample(row(Buffer.from("<img src=x onerror=alert(1)>".repeat(10_000))));
    expect(s.payload).toHaveLength(QUARANTINE_SAMPLE.payloadChars);
    expect(s.payload.startsWith("<img src=x onerror=alert(1)>")).toBe(true);
    expect(s.payloadBytes).toBe(280_000);
    expect(s.detail).toHaveLength(QUARANTINE_SAMPLE.detailChars);
  });

  it("keeps the whole report under the hub's 64 KiB with 12 payloads of control bytes, newest first", () => {
    const rows = Array.from({ length: 12 }, (_, i) => row(Buffer.alloc(100_000, 1), 12 - i));
    const data = encodeReport(status, false, rows);
    expect(data.byteLength).toBeLessThan(64 * 1024);
    const report = GatewayReport.parse(JSON.parse(Buffer.from(data).toString("utf8")));
    expect(report.recentQuarantine!.length).toBeGreaterThan(0);
    expect(report.recentQuarantine!.length).toBeLessThanOrEqual(QUARANTINE_SAMPLE.entries);
    expect(report.recentQuarantine![0]!.receivedAt).toBe(rows[0]!.receivedAt);
    // Plain payloads: all ten fit.
    const plain = GatewayReport.parse(
      JSON.parse(
        Buffer.from(
          encodeReport(
            status,
            false,
            Array.from({ length: 12 }, (_, i) => row(Buffer.from("x".repeat(5_000)), i)),
          ),
        ).toString("utf8"),
      ),
    );
    expect(plain.recentQuarantine).toHaveLength(QUARANTINE_SAMPLE.entries);
  });
});
