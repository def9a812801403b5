import { describe, expect, it } from "vitest";
import { encodePayload } from "@datalab/shared";
import { documentProblem, messageDocuments, messageId, payloadValue } from "../src/sinks/mongo-document";
import { summarizeBatch } from "../src/sinks/postgres-summary";
import { makeBatch, sinkBatch } from "./support/batches";

/** Pure mapping code: runs everywhere, no server. */
describe("MongoDB document mapping", () => {
  const b = makeBatch({
    gatewayId: "gw1",
    instance: "inst1",
    firstSeq: 101,
    messages: 3,
    metricsPerMessage: 2,
    sensorTime: true,
  });

  it("one document per wire message, _id = gateway:instance:first seq of the message", () => {
    const docs = messageDocuments(sinkBatch(b));
    expect(docs.map((d) => d._id)).toEqual(["gw1:inst1:101", "gw1:inst1:103", "gw1:inst1:105"]);
    const d = docs[1]!;
    expect(d).toMatchObject({
      gatewayId: "gw1",
      instance: "inst1",
      firstSeq: 103,
      lastSeq: 104,
      source: "mqtt:sensors",
      payloadType: "json",
    });
    expect(d.receivedAt).toEqual(new Date(b.batch.messages[1]!.receivedAt));
    expect(d.payload).toEqual(JSON.parse(b.batch.messages[1]!.payload));
    expect(d.readings).toEqual(b.batch.messages[1]!.readings.map((r) => ({ ...r, ts: new Date(r.ts) })));
    expect(d.batch).toEqual({ firstSeq: 101, lastSeq: 106, sentAt: new Date(b.batch.sentAt) });
  });

  it("the gateway id comes from the trusted subject, not the payload", () => {
    const docs = messageDocuments({ ...sinkBatch(b), gatewayId: "from-subject" });
    expect(docs[0]!._id).toBe("from-subject:inst1:101");
    expect(docs[0]!.gatewayId).toBe("from-subject");
  });

  it("the same message gets the same _id in a different batch (a gateway re-forming batches)", () => {
    const later = makeBatch({ gatewayId: "gw1", instance: "inst1", firstSeq: 103, messages: 2, metricsPerMessage: 2 });
    expect(messageDocuments(sinkBatch(later))[0]).toMatchObject({
      _id: "gw1:inst1:103",
      readings: messageDocuments(sinkBatch(b))[1]!.readings,
    });
  });

  it("_id uses the smallest seq even if readings are listed out of order", () => {
    const m = { ...b.batch.messages[0]!, readings: [...b.batch.messages[0]!.readings].reverse() };
    expect(messageId("gw1", "inst1", m)).toBe("gw1:inst1:101");
  });

  it("a message without readings (cannot come from the outbox) still gets a deterministic _id", () => {
    const m = { ...b.batch.messages[0]!, readings: [] };
    const id = messageId("gw1", "inst1", m);
    expect(id).toMatch(/^gw1:inst1:nr-[0-9a-f]{32}$/);
    expect(messageId("gw1", "inst1", { ...m })).toBe(id);
    expect(messageId("gw1", "inst1", { ...m, payload: "other" })).not.toBe(id);
  });

  it("payload: parsed JSON where JSON, text where text, bytes where binary (decoded from the wire encoding)", () => {
    expect(payloadValue(Buffer.from('{"name": "sensor1", "value": 5.1}'))).toEqual({
      payload: { name: "sensor1", value: 5.1 },
      type: "json",
    });
    expect(payloadValue(Buffer.from('[{"n":"t","v":21}]'))).toEqual({ payload: [{ n: "t", v: 21 }], type: "json" });
    // The original DataLab's single-quoted "JSON" is text, kept as received.
    expect(payloadValue(Buffer.from("{'name': 'sensor1'}"))).toEqual({
      payload: "{'name': 'sensor1'}",
      type: "text",
    });
    expect(payloadValue(Buffer.from("20;1;1;0;0;21.5"))).toEqual({ payload: "20;1;1;0;0;21.5", type: "text" });
    const frame = Buffer.from([0x7e, 0x00, 0x0a, 0x90, 0xff, 0xfe]);
    const wire = encodePayload(frame);
    expect(wire.encoding).toBe("base64");
    const docs = messageDocuments(
      sinkBatch(makeBatch({ gatewayId: "gw1", instance: "i", firstSeq: 1, messages: 1, message: wire })),
    );
    expect(docs[0]!.payloadType).toBe("binary");
    expect(Buffer.compare(docs[0]!.payload as Buffer, frame)).toBe(0);
  });

  it("JSON a document database would refuse is kept as text, with the reason", () => {
    for (const [json, why] of [
      ['{"$where": "1"}', /starts with \$/],
      ['{"a.b": 1}', /contains a dot/],
      ['{"coords": [[1, 2], [3, 4]]}', /array directly inside an array/],
      [`${'[{"a":'.repeat(40)}1${"}]".repeat(40)}`, /nested deeper/],
    ] as const) {
      const p = payloadValue(Buffer.from(json));
      expect(p.type).toBe("text");
      expect(p.payload).toBe(json);
      expect(p.note).toMatch(why);
    }
    // U+0000: FerretDB cannot hold it in a string. Escaped inside JSON, the text is fine
    // and kept as text; raw in the payload, the bytes are kept.
    expect(payloadValue(Buffer.from('{"a":"x\\u0000y"}'))).toMatchObject({
      type: "text",
      note: expect.stringMatching(/U\+0000/),
    });
    expect(documentProblem({ ok: [{ fine: "yes" }] }, 0)).toBeUndefined();
    expect(payloadValue(Buffer.from("a\u0000b")).type).toBe("binary");
  });
});

describe("Postgres per-batch summary (sensors, gateways)", () => {
  it("one row per sensor, sorted by id, with first/last seen and the newest value per metric", () => {
    const b = makeBatch({
      gatewayId: "gw1",
      instance: "inst1",
      firstSeq: 1,
      messages: 12,
      metricsPerMessage: 2,
      sensors: 3,
    });
    const s = summarizeBatch(sinkBatch(b));
    expect(s.sensors.map((x) => x.sensorId)).toEqual(["s0", "s1", "s2"]);
    const readings = sinkBatch(b).readings.filter((r) => r.sensorId === "s1");
    const s1 = s.sensors[1]!;
    expect(s1.firstSeen).toBe(Math.min(...readings.map((r) => r.receivedAt)));
    expect(s1.lastSeen).toBe(Math.max(...readings.map((r) => r.receivedAt)));
    const newestTemp = readings.filter((r) => r.metric === "temperature").sort((x, y) => y.ts - x.ts)[0]!;
    expect(s1.lastValues.temperature).toEqual({
      value: newestTemp.value,
      unit: "Cel",
      ts: newestTemp.ts,
      seq: newestTemp.seq,
    });
    expect(Object.keys(s1.lastValues).sort()).toEqual(["humidity", "temperature"]);
  });

  it("the newest value wins by sensor time, not by position in the batch", () => {
    const b = makeBatch({
      gatewayId: "gw1",
      instance: "inst1",
      firstSeq: 1,
      messages: 2,
      metricsPerMessage: 1,
      sensors: 1,
    });
    b.batch.messages[0]!.readings[0]!.ts = 2_000_000_000_000; // the first message carries the later sensor time
    const s = summarizeBatch(sinkBatch(b));
    expect(s.sensors[0]!.lastValues.temperature!.seq).toBe(1);
  });

  it("one gateway row: instance, seq range, size", () => {
    const b = makeBatch({ gatewayId: "gw1", instance: "inst1", firstSeq: 7, messages: 4, metricsPerMessage: 3 });
    expect(summarizeBatch({ ...sinkBatch(b), gatewayId: "subject-gw" }).gateway).toEqual({
      gatewayId: "subject-gw",
      instance: "inst1",
      firstSeq: 7,
      lastSeq: 18,
      sentAt: b.batch.sentAt,
      readings: 12,
      messages: 4,
      bytes: b.data.byteLength,
    });
  });
});

describe("the MongoDB driver loads only when configured (STYLE.md item 1)", () => {
  it("no hub module imports `mongodb` at load time except sinks/mongo.ts, only imported dynamically", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const { join, relative } = await import("node:path");
    const src = new URL("../src/", import.meta.url).pathname;
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.endsWith(".ts")) files.push(join(d, e.name));
      }
    };
    walk(src);
    const offenders: string[] = [];
    for (const f of files) {
      const rel = relative(src, f);
      const text = readFileSync(f, "utf8");
      // Static value imports ("import type" is erased and loads nothing).
      if (rel !== "sinks/mongo.ts" && /^import\s+(?!type\b)[^;]*from\s+["']mongodb["']/m.test(text))
        offenders.push(`${rel} imports mongodb`);
      if (/^import\s+(?!type\b)[^;]*from\s+["'][./]+(sinks\/)?mongo["']/m.test(text))
        offenders.push(`${rel} imports sinks/mongo statically`);
    }
    expect(offenders).toEqual([]);
    expect(readFileSync(join(src, "sinks/index.ts"), "utf8")).toMatch(/await import\("\.\/mongo"\)/);
  });
});
