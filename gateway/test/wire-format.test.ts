/**
 * DATALAB_WIRE_FORMAT: rows are written in the configured wire format and keep it; a batch is
 * made of rows of one format and says which in `v`, so changing the setting (a restart with
 * the other value) never sends a batch a hub would misread.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, decodeBatch, silentLogger, type WireFormat } from "@datalab/shared";
import { Batcher, rowFormat } from "../src/forward/batcher";
import { loadGatewayConfig } from "../src/config";
import { messages, openTestOutbox } from "./support/outbox";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("wire format of the outbox's rows and of the batches", () => {
  it("a restart with another format: batches never mix formats, each says its own, every reading once in order", () => {
    const formats: WireFormat[] = [1, 2, 1, 2];
    const t = openTestOutbox({ rowMaxReadings: 4, wireFormat: formats[0] });
    dirs.push(t.dir);
    formats.forEach((format, i) => {
      if (i > 0) t.reopen({ wireFormat: format });
      expect(t.outbox.wireFormat).toBe(format);
      t.outbox.commit(messages(1 + 25 * i, 25));
    });
    const rows = [...t.outbox.scan(0)];
    expect(rows.map(rowFormat)).toEqual(rows.map((r) => formats[Math.floor((r.firstSeq - 1) / 25)]));

    // Batches of up to 1,000 readings would hold all 100 readings at once if formats could mix.
    const batcher = new Batcher(
      t.outbox,
      "gw-w",
      { maxReadings: 1_000, maxBytes: 512 * 1024, maxAgeMs: 0 },
      silentLogger(),
    );
    const sent: { v: number; seqs: number[] }[] = [];
    for (let b = batcher.next(undefined, true); b; b = batcher.next(undefined, true)) {
      const batch = decodeBatch(b.data);
      sent.push({ v: batch.v, seqs: batch.messages.flatMap((m) => m.readings.map((r) => r.seq)) });
      expect(JSON.parse(b.data.toString("utf8")).messages[0]).toBeInstanceOf(batch.v === 2 ? Array : Object);
      t.outbox.settle(b.range, undefined);
    }
    expect(sent.map((s) => [s.v, s.seqs.length])).toEqual(formats.map((f) => [f, 25]));
    expect(sent.flatMap((s) => s.seqs)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    t.outbox.close();
  });

  it("format 2 is about a third fewer bytes than format 1 for single-reading messages", () => {
    const size = (format: WireFormat) => {
      const t = openTestOutbox({ wireFormat: format });
      dirs.push(t.dir);
      t.outbox.commit(messages(1, 200));
      const b = new Batcher(t.outbox, "gw-w", { maxReadings: 1_000, maxBytes: 1 << 20, maxAgeMs: 0 }, silentLogger());
      const bytes = b.next(undefined, true)!.data.byteLength;
      t.outbox.close();
      return bytes;
    };
    expect(size(2) / size(1)).toBeLessThan(0.75);
  });

  it("is set by DATALAB_WIRE_FORMAT, 2 by default; anything else is refused, naming the variable", () => {
    expect(loadGatewayConfig({ env: {} }).wireFormat).toBe(2);
    expect(loadGatewayConfig({ env: { DATALAB_WIRE_FORMAT: "1" } }).wireFormat).toBe(1);
    expect(() => loadGatewayConfig({ env: { DATALAB_WIRE_FORMAT: "3" } })).toThrow(ConfigError);
    expect(() => loadGatewayConfig({ env: { DATALAB_WIRE_FORMAT: "3" } })).toThrow(/DATALAB_WIRE_FORMAT.*1 or 2/);
  });
});
