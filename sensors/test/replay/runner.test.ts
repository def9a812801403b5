import { describe, expect, it } from "vitest";
import { createParser } from "../../src/protocols/index";
import { createSerialEncoder, LineReader, MqttEncoder, Pacer, replayFile, type ReplayOptions } from "../../src/index";
import { fixturePath, MemoryOutput, writeTemp } from "./helpers";

const mqtt = (root = "lab") => new MqttEncoder("multi", root);

describe("replayFile", () => {
  it("publishes each Intel Lab row as one multi-metric message on <root>/<sensor>, at its original time", async () => {
    const out = new MemoryOutput();
    const summary = await replayFile(
      { file: fixturePath("intel-lab/lines.txt"), format: "intel-lab", mapping: {}, speed: "max" },
      mqtt(),
      out,
    );
    expect(summary.toJSON()).toMatchObject({ read: 9, published: 9, skipped: {} });
    expect(out.messages.map((m) => m.topic)).toEqual(Array(9).fill("lab/1"));
    expect(out.json()[0]).toEqual({
      sensor: "1",
      temperature: 122.153,
      humidity: -3.91901,
      light: 11.04,
      voltage: 2.03397,
      units: { temperature: "Cel", humidity: "%RH", light: "lx", voltage: "V" },
      ts: Date.UTC(2004, 2, 31, 3, 38, 15, 757),
    });
    expect(out.json()[8]).toMatchObject({ ts: Date.UTC(2004, 1, 28, 1, 11, 46, 941) });
  });

  it(
    "with --interval, the four motes of multi-hop.csv overlap: each mote's first row is at --start, " +
      "its n-th at n × interval",
    async () => {
      const out = new MemoryOutput();
      const start = Date.UTC(2010, 5, 1);
      const summary = await replayFile(
        {
          file: fixturePath("suthaharan/multi-hop.csv"),
          format: "csv",
          mapping: {
            sensor: "mote_id",
            intervalMs: 5_000,
            startMs: start,
            metrics: [{ column: "humidity", metric: "humidity" }],
          },
          speed: "max",
        },
        mqtt(),
        out,
      );
      expect(summary.published).toBe(18_760);
      const byMote = new Map<string, number[]>();
      for (const m of out.json() as { sensor: string; ts: number }[])
        byMote.set(m.sensor, [...(byMote.get(m.sensor) ?? []), m.ts]);
      expect([...byMote.keys()].sort()).toEqual(["1", "2", "3", "4"]);
      for (const [mote, ts] of byMote) {
        expect(ts[0], mote).toBe(start);
        expect(ts.at(-1), mote).toBe(start + (ts.length - 1) * 5_000);
      }
    },
  );

  it("skips bad lines, never stops for them, and sums them up by reason with their first line numbers", async () => {
    const rows = ["reading,mote_id,humidity,temperature"];
    for (let i = 1; i <= 20; i++) rows.push(i % 3 === 0 ? `${i},1,wet,20` : `${i},${i % 4},${40 + i},${20 + i / 10}`);
    rows.push("99,1"); // line 22
    const file = writeTemp("bad.csv", `${rows.join("\n")}\n`);
    const problems: number[] = [];
    const out = new MemoryOutput();
    const o: ReplayOptions = {
      file,
      format: "csv",
      mapping: {
        sensor: "mote_id",
        intervalMs: 1000,
        startMs: 0,
        metrics: [
          { column: "humidity", metric: "humidity" },
          { column: "temperature", metric: "temperature" },
        ],
      },
      speed: "max",
      onProblem: (p) => problems.push(p.line),
    };
    const summary = await replayFile(o, mqtt(), out);
    // Rows 3, 6, ..., 18 (lines 4, 7, ..., 19) have "wet" humidity; line 22 is short.
    expect(problems).toEqual([4, 7, 10, 13, 16, 19, 22]);
    expect(summary.read).toBe(21);
    expect(summary.published).toBe(14);
    expect(Object.fromEntries(summary.skipped)).toEqual({
      bad_value: { count: 6, lines: [4, 7, 10, 13, 16] },
      field_count: { count: 1, lines: [22] },
    });
    expect(summary.format()).toMatch(/21 rows read, 14 published, 7 skipped/);
    expect(summary.format()).toMatch(/skipped bad_value: 6 \(lines 4, 7, 10, 13, 16, …\)/);
    expect(summary.format()).toMatch(/skipped field_count: 1 \(line 22\)/);
    expect(out.messages).toHaveLength(14);
    // Spacing is per sensor and counts the sensor's bad rows too: its k-th row is at start + k s.
    // Sensor 1 has rows 1, 3 (bad), 5, ...; sensor 0 starts with row 4.
    expect(out.json()[0]).toMatchObject({ sensor: "1", ts: 0 });
    expect(out.json()[2]).toMatchObject({ sensor: "0", ts: 0 });
    expect(out.json()[3]).toMatchObject({ sensor: "1", ts: 2000 });
  });

  it("reads CRLF files and a last line without a newline; reports an over-long line without buffering it", async () => {
    const long = "x".repeat(70 * 1024);
    const file = writeTemp("crlf.csv", `sensor,t\r\na,1\r\n${long}\r\nb,2`);
    const lines: (string | undefined)[] = [];
    for await (const l of new LineReader(file).lines()) lines.push(l.text);
    expect(lines).toEqual(["sensor,t", "a,1", undefined, "b,2"]);
    const out = new MemoryOutput();
    const s = await replayFile(
      { file, format: "csv", mapping: { sensor: "sensor", intervalMs: 0, startMs: 1e12 }, speed: "max" },
      mqtt(),
      out,
    );
    expect(Object.fromEntries(s.skipped)).toEqual({ line_too_long: { count: 1, lines: [3] } });
    expect(out.json()).toEqual([
      { sensor: "a", t: 1, ts: 1e12 },
      { sensor: "b", t: 2, ts: 1e12 },
    ]);
  });

  it("takes the file name as sensor without --sensor, states its metrics' units, and stops at --limit", async () => {
    const file = writeTemp(
      "greenhouse.csv",
      "when,soil,air\n2024-05-01T10:00:00Z,31.5,22\n2024-05-01T10:01:00Z,31.4,22.5\n2024-05-01T10:02:00Z,31.2,23\n",
    );
    const out = new MemoryOutput();
    const s = await replayFile(
      {
        file,
        format: "csv",
        mapping: {
          time: ["when"],
          metrics: [
            { column: "soil", metric: "moisture", unit: "%" },
            { column: "air", metric: "temperature" },
          ],
        },
        speed: "max",
        limit: 2,
      },
      mqtt("farm"),
      out,
    );
    expect(s.read).toBe(2);
    expect(out.messages.map((m) => m.topic)).toEqual(["farm/greenhouse", "farm/greenhouse"]);
    expect(out.json()[1]).toEqual({
      sensor: "greenhouse",
      moisture: 31.4,
      temperature: 22.5,
      units: { moisture: "%", temperature: "Cel" },
      ts: Date.UTC(2024, 4, 1, 10, 1),
    });
  });

  it("replays into a radio codec that the gateway's parser reads back, skipping rows it cannot carry", async () => {
    const file = writeTemp("mixed.csv", "mote,temperature,co2\n3,21.5,\n3,21.6,400\n");
    const out = new MemoryOutput();
    const s = await replayFile(
      { file, format: "csv", mapping: { sensor: "mote", intervalMs: 1000, startMs: 1e12 }, speed: "max" },
      createSerialEncoder("mysensors"),
      out,
    );
    expect(Object.fromEntries(s.skipped)).toEqual({ not_encodable: { count: 1, lines: [3] } });
    const codec = createParser("mysensors");
    const readings = codec
      .push(Buffer.concat(out.messages.map((m) => m.payload)))
      .flatMap((o) => (o.kind === "readings" ? o.readings : []));
    expect(readings).toEqual([{ sensorId: "mys-3-0", metric: "temperature", value: 21.5, unit: "Cel" }]);
  });

  it("paces rows by their own timestamps: at speed 10, rows 1 s apart go out 100 ms apart", async () => {
    const file = writeTemp("paced.csv", "s,t,v\na,0,1\na,1,2\na,2,3\n");
    const out = new MemoryOutput();
    const started = performance.now();
    await replayFile({ file, format: "csv", mapping: { sensor: "s", time: ["t"] }, speed: 10 }, mqtt(), out);
    // A lower bound only (the schedule cannot be beaten); speed itself is measured by benches.
    expect(performance.now() - started).toBeGreaterThanOrEqual(195);
    expect(out.messages).toHaveLength(3);
  });
});

describe("Pacer", () => {
  it("schedules against the start, not the previous send, so lateness does not accumulate", () => {
    let now = 1000;
    const p = new Pacer(2, () => now);
    expect(p.wait(0)).toBeUndefined(); // the first item starts the clock
    expect(p.wait(1000)).toBeInstanceOf(Promise); // due at 1000 + 500
    now = 1600; // late by 100 ms...
    expect(p.wait(1000)).toBeUndefined();
    now = 1990; // ...yet item 2 is still due at 1000 + 1000, not 1600 + 500
    expect(p.wait(2000)).toBeInstanceOf(Promise);
    now = 2000;
    expect(p.wait(2000)).toBeUndefined();
    expect(new Pacer("max").wait(1e12)).toBeUndefined();
    expect(() => new Pacer(0)).toThrow(RangeError);
  });
});
