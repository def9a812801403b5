import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@datalab/shared";
import {
  CsvFormat,
  IntelLabFormat,
  parseMetricSpec,
  parseTime,
  RowMapper,
  splitCsvLine,
  type ParsedLine,
  type ReplayRecord,
  type TableFormat,
} from "../../src/index";
import { fixturePath } from "./helpers";

function parseAll(format: TableFormat, text: string): ParsedLine[] {
  return text.split("\n").map((line, i) => format.parseLine(line, i + 1));
}

describe("Intel Lab format", () => {
  const lines = readFileSync(fixturePath("intel-lab/lines.txt"), "utf8");

  it("reads every line of the real fixture into the eight named columns", () => {
    const rows = parseAll(new IntelLabFormat(), lines).filter((p) => p.kind === "row");
    expect(rows).toHaveLength(9);
    expect(rows[0]).toEqual({
      kind: "row",
      row: { line: 1, cells: ["2004-03-31", "03:38:15.757551", "2", "1", "122.153", "-3.91901", "11.04", "2.03397"] },
    });
  });

  it("maps a row to mote id, its original time (UTC, to the millisecond) and four metrics with SenML units", () => {
    const f = new IntelLabFormat();
    const mapper = new RowMapper(f.columns, { defaultSensorId: "x" }, f.defaults);
    const p = f.parseLine("2004-03-31 03:38:15.757551 2 1 122.153 -3.91901 11.04 2.03397", 1);
    if (p.kind !== "row") throw new Error("not a row");
    expect(mapper.toRecord(p.row)).toEqual({
      line: 1,
      sensorId: "1",
      ts: Date.UTC(2004, 2, 31, 3, 38, 15, 757),
      metrics: [
        { metric: "temperature", value: 122.153, unit: "Cel" },
        { metric: "humidity", value: -3.91901, unit: "%RH" },
        { metric: "light", value: 11.04, unit: "lx" },
        { metric: "voltage", value: 2.03397, unit: "V" },
      ],
    });
  });

  it("keeps a row that ends early (no light, no voltage) with the values it has", () => {
    const f = new IntelLabFormat();
    const mapper = new RowMapper(f.columns, { defaultSensorId: "x" }, f.defaults);
    const p = f.parseLine("2004-02-28 01:06:46.778088 18 1 19.175 38.8379", 7);
    if (p.kind !== "row") throw new Error("not a row");
    const r = mapper.toRecord(p.row) as ReplayRecord;
    expect(r.metrics.map((m) => m.metric)).toEqual(["temperature", "humidity"]);
  });

  it("reports bad lines with their line numbers and reasons", () => {
    const f = new IntelLabFormat();
    const mapper = new RowMapper(f.columns, { defaultSensorId: "x" }, f.defaults);
    const text = [
      "2004-02-28 00:59:16.02785 3 1 19.9884 37.0933 45.08 2.69964", // 1 good
      "2004-02-28 00:59:16.02785 3", // 2 too few fields
      "2004-02-28 00:59:16.02785 3 1 19.9 37.0 45.08 2.69 9 9", // 3 too many
      "2004-02-30 00:59:16 3 1 19.9 37.0 45.08 2.69", // 4 no such date
      "2004-02-28 00:59:16 3 1 hot 37.0 45.08 2.69", // 5 not a number
      "", // 6 blank: not a row, not a problem
      "2004-02-28 25:00:00 3 1 19.9 37.0 45.08 2.69", // 7 no such hour
      "2004-02-28 01:00:00 3 1 NaN 37.0 45.08 2.69", // 8 NaN is not a reading
    ].join("\n");
    const out = parseAll(f, text).map((p) => {
      if (p.kind === "problem") return [p.problem.line, p.problem.reason];
      if (p.kind === "row") {
        const r = mapper.toRecord(p.row);
        return "reason" in r ? [r.line, r.reason] : [r.line, "ok"];
      }
      return [null, p.kind];
    });
    expect(out).toEqual([
      [1, "ok"],
      [2, "field_count"],
      [3, "field_count"],
      [4, "bad_time"],
      [5, "bad_value"],
      [null, "blank"],
      [7, "bad_time"],
      [8, "bad_value"],
    ]);
  });
});

describe("CSV format", () => {
  it("splits RFC 4180 fields: quotes, doubled quotes, the delimiter inside quotes", () => {
    expect(splitCsvLine('a,"b,c","say ""hi""",,d')).toEqual(["a", "b,c", 'say "hi"', "", "d"]);
    expect(splitCsvLine("a;b;c", ";")).toEqual(["a", "b", "c"]);
    expect(splitCsvLine('a,"b')).toBeUndefined();
    expect(splitCsvLine("")).toEqual([""]);
  });

  it("reads the real suthaharan header and rows", () => {
    const f = new CsvFormat();
    const text = readFileSync(fixturePath("suthaharan/single-hop.csv"), "utf8").split("\n").slice(0, 3).join("\n");
    const parsed = parseAll(f, text);
    expect(parsed[0]).toEqual({
      kind: "header",
      columns: ["reading", "mote_id", "indoor", "humidity", "temperature", "label"],
    });
    expect(parsed[1]).toEqual({ kind: "row", row: { line: 2, cells: ["1", "1", "1", "45.93", "27.97", "0"] } });
  });

  it(
    "maps a column per metric, spaces each sensor's rows --interval apart from --start (sensors overlap), " +
      "and keeps the file order",
    () => {
      const f = new CsvFormat();
      parseAll(f, "reading,mote_id,indoor,humidity,temperature,label");
      const start = Date.UTC(2010, 0, 1);
      const mapper = new RowMapper(f.columns!, {
        defaultSensorId: "x",
        sensor: "mote_id",
        sensorPrefix: "telosb-",
        intervalMs: 5_000,
        startMs: start,
        metrics: [parseMetricSpec("humidity=rh:%RH") as never, parseMetricSpec("temperature") as never],
      });
      const recs = ["1,1,1,45.93,27.97,0", "2,4,1,45.9,27.95,0", "3,1,1,45.8,27.9,0"].map((l, i) => {
        const p = f.parseLine(l, i + 2);
        if (p.kind !== "row") throw new Error("not a row");
        return mapper.toRecord(p.row);
      });
      expect(recs).toEqual([
        {
          line: 2,
          sensorId: "telosb-1",
          ts: start,
          metrics: [
            { metric: "rh", value: 45.93, unit: "%RH" },
            { metric: "temperature", value: 27.97, unit: "Cel" },
          ],
        },
        {
          line: 3,
          sensorId: "telosb-4",
          ts: start,
          metrics: [
            { metric: "rh", value: 45.9, unit: "%RH" },
            { metric: "temperature", value: 27.95, unit: "Cel" },
          ],
        },
        {
          line: 4,
          sensorId: "telosb-1",
          ts: start + 5_000,
          metrics: [
            { metric: "rh", value: 45.8, unit: "%RH" },
            { metric: "temperature", value: 27.9, unit: "Cel" },
          ],
        },
      ]);
    },
  );

  it("reports bad lines with their line numbers and reasons, and keeps reading", () => {
    const f = new CsvFormat();
    const text = [
      "reading,mote_id,humidity,temperature", // 1 header
      "1,1,45.93,27.97", // 2 ok
      "2,1,abc,27.95", // 3 bad value
      "3,1", // 4 too few
      "4,,45.9,27.96", // 5 no sensor
      "5,1,,", // 6 nothing to publish
      '6,1,"45.2,27.9', // 7 unterminated quote
      "7,1,1e3,0x10", // 8 hex is not a decimal
      "8,1,45.1,27.0,extra", // 9 too many
      "9,1,45.0,-1.5", // 10 ok
      "10,\u0007bell,45,27", // 11 control character in the id
    ].join("\n");
    const mapper = () =>
      new RowMapper(f.columns!, {
        defaultSensorId: "x",
        sensor: "mote_id",
        intervalMs: 1000,
        startMs: 0,
        metrics: [
          { column: "humidity", metric: "humidity" },
          { column: "temperature", metric: "temperature" },
        ],
      });
    let m: RowMapper | undefined;
    const out: [number, string][] = [];
    for (const p of parseAll(f, text)) {
      if (p.kind === "header") m = mapper();
      else if (p.kind === "problem") out.push([p.problem.line, p.problem.reason]);
      else if (p.kind === "row") {
        const r = m!.toRecord(p.row);
        out.push("reason" in r ? [r.line, r.reason] : [r.line, "ok"]);
      }
    }
    expect(out).toEqual([
      [2, "ok"],
      [3, "bad_value"],
      [4, "field_count"],
      [5, "missing_sensor"],
      [6, "no_values"],
      [7, "unterminated_quote"],
      [8, "bad_value"],
      [9, "field_count"],
      [10, "ok"],
      [11, "bad_sensor_id"],
    ]);
  });

  it("names columns 1, 2, ... without a header, and reads a time column in epoch seconds or ISO", () => {
    const f = new CsvFormat({ headerless: true, delimiter: ";" });
    const p1 = f.parseLine("kitchen;1700000000;21.5", 1);
    expect(f.columns).toEqual(["1", "2", "3"]);
    const m = new RowMapper(f.columns!, {
      defaultSensorId: "x",
      sensor: "1",
      time: ["2"],
      metrics: [{ column: "3", metric: "temperature" }],
    });
    if (p1.kind !== "row") throw new Error("not a row");
    expect(m.toRecord(p1.row)).toMatchObject({ sensorId: "kitchen", ts: 1_700_000_000_000 });
    const p2 = f.parseLine("kitchen;2023-11-14T22:13:20.250+01:00;21.6", 2);
    if (p2.kind !== "row") throw new Error("not a row");
    expect(m.toRecord(p2.row)).toMatchObject({ ts: Date.UTC(2023, 10, 14, 21, 13, 20, 250) });
  });

  it("refuses a mapping with unknown columns or reserved metric names, listing every problem at once", () => {
    const cols = ["reading", "mote_id", "humidity"];
    let err: unknown;
    try {
      new RowMapper(cols, {
        defaultSensorId: "x",
        sensor: "mote",
        time: ["when"],
        metrics: [
          { column: "humidity", metric: "ts" },
          { column: "temp", metric: "t" },
        ],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toMatch(/--sensor: no column "mote" \(columns: reading, mote_id, humidity\)/);
    expect(problems).toMatch(/--time: no column "when"/);
    expect(problems).toMatch(/"ts" would be read as the sensor id/);
    expect(problems).toMatch(/--metric: no column "temp"/);
  });
});

describe("time and metric specs", () => {
  it("reads epoch seconds, epoch ms and calendar times; zone-less ones at the given zone", () => {
    expect(parseTime("1080704295")).toBe(1_080_704_295_000);
    expect(parseTime("1080704295757")).toBe(1_080_704_295_757);
    expect(parseTime("2004-03-31 03:38:15.757551")).toBe(Date.UTC(2004, 2, 31, 3, 38, 15, 757));
    expect(parseTime("2004-03-31 03:38:15.757551", -8 * 60)).toBe(Date.UTC(2004, 2, 31, 11, 38, 15, 757));
    expect(parseTime("2004-03-31T03:38Z")).toBe(Date.UTC(2004, 2, 31, 3, 38));
    expect(parseTime("2004-03-31")).toBe(Date.UTC(2004, 2, 31));
    for (const bad of ["", "yesterday", "2004-13-01 00:00:00", "2004-02-30", "1960-01-01", "2004-03-31 03:38:61"])
      expect(parseTime(bad), bad).toBeUndefined();
  });

  it("parses COLUMN, COLUMN=NAME and COLUMN=NAME:UNIT", () => {
    expect(parseMetricSpec("temperature")).toEqual({ column: "temperature", metric: "temperature" });
    expect(parseMetricSpec("temp=temperature")).toEqual({ column: "temp", metric: "temperature" });
    expect(parseMetricSpec("humidity=humidity:%RH")).toEqual({ column: "humidity", metric: "humidity", unit: "%RH" });
    expect(parseMetricSpec("t=:Cel")).toEqual({ column: "t", metric: "t", unit: "Cel" });
    expect(parseMetricSpec("=x")).toHaveProperty("problem");
    expect(parseMetricSpec("t=x:")).toHaveProperty("problem");
  });
});
