import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Batch, DecodedReading, isDecodedReading, isWireBatch } from "../src/index";

// Values near every boundary the schemas draw, valid and not, so the generated objects
// land on both sides of each rule.
const anyName = fc.oneof(
  fc.string({ minLength: 1, maxLength: 20 }),
  fc.constantFrom(
    "",
    "a".repeat(64),
    "a".repeat(65),
    "a".repeat(128),
    "a".repeat(129),
    "tab\there",
    "del\u007f",
    "c1\u0085",
    "ok-é-日本",
    "lone\udc00",
    "\ud800high",
    "pair-\ud83d\ude00",
  ),
);
const anyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(
    0,
    -1,
    1,
    0.5,
    Number.NaN,
    Infinity,
    -Infinity,
    2 ** 53,
    7_258_118_400_000,
    7_258_118_400_001,
    1_764_270_000_000,
    1e100,
    -1e100,
    1.0000000000000001e100,
    1.7976931348623157e308,
    -1e300,
  ),
);
const anyValue = fc.oneof(
  anyNumber,
  anyName,
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.constant({}),
  fc.constant([]),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: anyValue });

const validName = (max: number) =>
  fc.string({ minLength: 1, maxLength: max }).filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s));
const validMs = fc.integer({ min: 0, max: 7_258_118_400_000 });
const validValue = fc.double({ min: -1e100, max: 1e100, noNaN: true });
const validReading = fc.record({
  sensorId: validName(128),
  metric: validName(64),
  value: validValue,
  unit: fc.option(fc.string({ maxLength: 32 }), { nil: undefined }),
  ts: fc.option(validMs, { nil: undefined }),
});
const validWireReading = fc.record({
  seq: fc.integer({ min: 1 }),
  sensorId: validName(128),
  metric: validName(64),
  value: validValue,
  unit: fc.option(fc.string({ maxLength: 32 }), { nil: null }),
  ts: validMs,
});
const validMessage = fc.record({
  source: fc.string({ maxLength: 512 }),
  receivedAt: validMs,
  payload: fc.string(),
  encoding: fc.constantFrom("utf8", "base64"),
  readings: fc.array(validWireReading, { maxLength: 4 }),
});
const validBatch = fc.record({
  v: fc.constant(1),
  gatewayId: fc.string(),
  instance: validName(128),
  firstSeq: fc.integer({ min: 1 }),
  lastSeq: fc.integer({ min: 1 }),
  sentAt: validMs,
  messages: fc.array(validMessage, { maxLength: 4 }),
});

// The same shapes with any field possibly replaced by something else.
const mixedReading = fc.record(
  {
    sensorId: maybe(anyName),
    metric: maybe(anyName),
    value: maybe(anyNumber),
    unit: maybe(anyName),
    ts: maybe(anyNumber),
  },
  { requiredKeys: [] },
);
const mixedWireReading = fc.record({
  seq: maybe(anyNumber),
  sensorId: maybe(anyName),
  metric: maybe(anyName),
  value: maybe(anyNumber),
  unit: maybe(fc.oneof(anyName, fc.constant(null))),
  ts: maybe(anyNumber),
});
const mixedMessage = fc.record({
  source: maybe(fc.oneof(anyName, fc.constant("s".repeat(513)))),
  receivedAt: maybe(anyNumber),
  payload: maybe(fc.string()),
  encoding: maybe(fc.constantFrom("utf8", "base64", "hex")),
  readings: maybe(fc.array(fc.oneof(validWireReading, mixedWireReading), { maxLength: 3 })),
});
const mixedBatch = fc.record({
  v: maybe(fc.constantFrom(1, 2)),
  gatewayId: maybe(fc.string()),
  instance: maybe(fc.string()),
  firstSeq: maybe(anyNumber),
  lastSeq: maybe(anyNumber),
  sentAt: maybe(anyNumber),
  messages: maybe(fc.array(fc.oneof(validMessage, mixedMessage), { maxLength: 3 })),
});

describe("the hand-written checks never pass what zod refuses, and pass what is valid", () => {
  it("decoded readings: anything the check passes, zod accepts", () => {
    fc.assert(
      fc.property(fc.oneof(validReading, mixedReading), (r) => {
        if (isDecodedReading(r)) expect(DecodedReading.safeParse(r).success).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it("decoded readings: every valid reading takes the fast path", () => {
    fc.assert(
      fc.property(validReading, (r) => isDecodedReading(r)),
      { numRuns: 2_000 },
    );
  });

  it("wire batches: anything the check passes, zod accepts", () => {
    fc.assert(
      fc.property(fc.oneof(validBatch, mixedBatch), (b) => {
        if (isWireBatch(b)) expect(Batch.safeParse(b).success).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it("wire batches: every valid batch takes the fast path", () => {
    fc.assert(
      fc.property(validBatch, (b) => isWireBatch(b)),
      { numRuns: 2_000 },
    );
  });

  it("both sides of each rule are generated (the properties above are not vacuous)", () => {
    const batches = fc.sample(fc.oneof(validBatch, mixedBatch), 2_000);
    expect(batches.filter((b) => isWireBatch(b)).length).toBeGreaterThan(400);
    expect(batches.filter((b) => !Batch.safeParse(b).success).length).toBeGreaterThan(400);
    const readings = fc.sample(mixedReading, 2_000);
    expect(readings.filter((r) => isDecodedReading(r)).length).toBeGreaterThan(20);
    expect(readings.filter((r) => !DecodedReading.safeParse(r).success).length).toBeGreaterThan(400);
  });
});
