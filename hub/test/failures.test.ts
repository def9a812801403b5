import { describe, expect, it } from "vitest";
import { MongoBulkWriteError, MongoNetworkError, MongoServerError, MongoServerSelectionError } from "mongodb";
import { FailureCounts, retryDelayMs } from "../src/consume/failures";
import { duplicatesOnly, isMongoUnavailable } from "../src/sinks/mongo";
import { isPgUnavailable } from "../src/sinks/postgres-errors";

/** Which failures count against a batch, and how they are remembered. No server needed. */
describe("failure accounting", () => {
  it("counts per batch, separates held-against from all tries, forgets on clear", () => {
    const f = new FailureCounts();
    expect(f.record(5, false, 1)).toEqual({ counted: 0, tries: 1, lastAt: 1 });
    expect(f.record(5, true, 2)).toEqual({ counted: 1, tries: 2, lastAt: 2 });
    expect(f.add(5)).toBe(2);
    expect(f.add(6)).toBe(1);
    f.clear(5);
    expect(f.get(5)).toBeUndefined();
    expect(f.get(6)?.counted).toBe(1);
  });

  it("is bounded: the least recently failed batch is forgotten first", () => {
    const f = new FailureCounts(3);
    for (const seq of [1, 2, 3]) f.add(seq);
    f.add(1); // 1 failed again: now 2 is the oldest
    f.add(4);
    expect(f.size).toBe(3);
    expect(f.get(2)).toBeUndefined();
    expect(f.get(1)?.counted).toBe(2);
  });

  it("retry delays grow 0.5 s, 1 s, 2 s ... up to 30 s", () => {
    expect([1, 2, 3, 4, 10, 100].map(retryDelayMs)).toEqual([500, 1_000, 2_000, 4_000, 30_000, 30_000]);
  });
});

describe("PostgreSQL errors: unavailable (pause) or refused (count)", () => {
  const pgError = (code: string, message = "x") => Object.assign(new Error(message), { code });
  it.each([
    ["connection refused", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })],
    ["admin shutdown (pg_ctl stop -m fast)", pgError("57P01")],
    ["starting up", pgError("57P03")],
    ["disk full", pgError("53100")],
    ["too many connections", pgError("53300")],
    ["schema missing", pgError("42P01")],
    ["lost connection, no code", new Error("Connection terminated unexpectedly")],
    ["wrapped", new Error("migration 002 failed", { cause: pgError("08006") })],
    [
      "every address failed",
      Object.assign(new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]), {}),
    ],
  ])("%s → unavailable", (_, err) => {
    expect(isPgUnavailable(err)).toBe(true);
  });
  it.each([
    ["check violation", pgError("23514")],
    ["invalid byte sequence (U+0000 in text)", pgError("22021")],
    ["numeric out of range", pgError("22003")],
    ["a bug", new TypeError("cannot read properties of undefined")],
  ])("%s → refused", (_, err) => {
    expect(isPgUnavailable(err)).toBe(false);
  });
});

describe("MongoDB errors", () => {
  it("network, server selection and shutdown codes are unavailable; a validation error is a refusal", () => {
    expect(isMongoUnavailable(new MongoNetworkError("connection 1 closed"))).toBe(true);
    expect(
      isMongoUnavailable(
        new MongoServerSelectionError("no server", {
          type: "Unknown",
          servers: new Map(),
          stale: false,
          compatible: true,
          heartbeatFrequencyMS: 1,
          localThresholdMS: 1,
          setName: null,
          maxElectionId: null,
          maxSetVersion: null,
          commonWireVersion: 0,
          logicalSessionTimeoutMinutes: null,
        } as never),
      ),
    ).toBe(true);
    expect(isMongoUnavailable(new MongoServerError({ message: "shutting down", code: 91 }))).toBe(true);
    expect(isMongoUnavailable(new MongoServerError({ message: "invalid key", code: 2 }))).toBe(false);
  });

  it("insertMany losing its connection is a MongoBulkWriteError without write errors: unavailable", () => {
    const e = new MongoBulkWriteError(
      Object.assign(new Error("write ECONNRESET"), { code: "ECONNRESET" }) as never,
      {} as never,
    );
    expect(isMongoUnavailable(e)).toBe(true);
    expect(duplicatesOnly(e)).toBeUndefined();
  });

  it("duplicate keys only: written (a redelivery); any other write error: not", () => {
    const dup = (index: number) => ({ index, code: 11000, errmsg: "E11000 duplicate key" });
    const result = { insertedCount: 3 } as never;
    const onlyDups = new MongoBulkWriteError(
      { message: "dup", code: 11000, writeErrors: [dup(0), dup(2)] as never },
      result,
    );
    expect(duplicatesOnly(onlyDups)).toEqual({ inserted: 3, duplicates: 2 });
    const mixed = new MongoBulkWriteError(
      { message: "mixed", code: 11000, writeErrors: [dup(0), { index: 1, code: 2, errmsg: "invalid key" }] as never },
      result,
    );
    expect(duplicatesOnly(mixed)).toBeUndefined();
    expect(isMongoUnavailable(mixed)).toBe(false);
  });
});
