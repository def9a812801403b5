/** The replay command line is a contract scripts rely on: these run the real CLI as a child process. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@datalab/shared/testing";
import { createParser } from "../../src/protocols/index";
import { openReader, sensorsCli, startPtyPair, type PtyPair } from "../simulate/processes";
import { fixturePath, writeTemp } from "./helpers";

const sensors = sensorsCli;

describe("pnpm sensors replay (the CLI)", () => {
  it("replays a CSV to stdout, reports each bad line with its number, and ends with a summary by reason", async () => {
    const file = writeTemp(
      "telosb.csv",
      [
        "reading,mote_id,indoor,humidity,temperature,label",
        "1,1,1,45.93,27.97,0",
        "2,1,1,oops,27.95,0",
        "3,1",
        "4,2,1,45.9,27.96,0",
        "5,,1,45.9,27.96,0",
        "",
      ].join("\n"),
    );
    const r = await sensors(
      "replay",
      file,
      "--sensor",
      "mote_id",
      "--interval",
      "5",
      "--start",
      "2010-01-01T00:00:00Z",
      "--metric",
      "humidity=humidity:%RH",
      "--metric",
      "temperature",
      "--speed",
      "max",
      "--out",
      "stdout",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(
      r.stdout
        .toString()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      {
        sensor: "1",
        humidity: 45.93,
        temperature: 27.97,
        units: { humidity: "%RH", temperature: "Cel" },
        ts: Date.UTC(2010, 0, 1),
      },
      // Sensor 2's first row: each sensor's rows are spaced from --start.
      {
        sensor: "2",
        humidity: 45.9,
        temperature: 27.96,
        units: { humidity: "%RH", temperature: "Cel" },
        ts: Date.UTC(2010, 0, 1),
      },
    ]);
    expect(r.stderr).toContain(`${file}:3: skipped (bad_value): column "humidity": "oops" is not a number`);
    expect(r.stderr).toContain(`${file}:4: skipped (field_count)`);
    expect(r.stderr).toContain(`${file}:6: skipped (missing_sensor)`);
    expect(r.stderr).toMatch(/replay done: 5 rows read, 2 published, 3 skipped/);
    expect(r.stderr).toMatch(/skipped bad_value: 1 \(line 3\)/);
  });

  it("exits 2 with every mapping problem named, before sending anything", async () => {
    const r = await sensors(
      "replay",
      fixturePath("suthaharan/single-hop.csv"),
      "--sensor",
      "mote",
      "--metric",
      "hum=humidity",
      "--out",
      "stdout",
      "--speed",
      "fast",
    );
    expect(r.code).toBe(2);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/--speed="fast": expected a number > 0 or "max"/);
    const r2 = await sensors(
      "replay",
      fixturePath("suthaharan/single-hop.csv"),
      "--sensor",
      "mote",
      "--metric",
      "hum=humidity",
      "--out",
      "stdout",
    );
    expect(r2.code).toBe(2);
    expect(r2.stdout.length).toBe(0);
    expect(r2.stderr).toMatch(
      /--sensor: no column "mote" \(columns: reading, mote_id, indoor, humidity, temperature, label\)/,
    );
    expect(r2.stderr).toMatch(/--metric: no column "hum"/);
  });

  describe("to a serial port", () => {
    let pty: PtyPair;
    beforeAll(async () => {
      pty = await startPtyPair();
    });
    afterAll(async () => {
      await pty?.stop();
    });

    it("writes the Intel Lab rows as XBee API mode 2 frames that decode to the recorded values and times", async () => {
      const reader = await openReader(pty.b);
      const r = await sensors(
        "replay",
        fixturePath("intel-lab/lines.txt"),
        "--speed",
        "max",
        "--out",
        `serial:${pty.a}@9600:xbee2`,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/9 rows read, 9 published, 0 skipped/);
      const readings = await waitFor(() => {
        const rs = createParser("xbee2")
          .push(reader.received())
          .flatMap((o) => (o.kind === "readings" ? o.readings : []));
        return rs.length === 36 ? rs : undefined;
      }, "36 readings from the pty");
      await reader.close();
      // `name=value` text states no unit: unknown unless the gateway's DATALAB_UNITS names one.
      expect(readings.slice(0, 4)).toEqual([
        {
          sensorId: "xbee-0013a20000000001",
          metric: "temperature",
          value: 122.153,
          ts: Date.UTC(2004, 2, 31, 3, 38, 15, 757),
        },
        {
          sensorId: "xbee-0013a20000000001",
          metric: "humidity",
          value: -3.91901,
          ts: Date.UTC(2004, 2, 31, 3, 38, 15, 757),
        },
        { sensorId: "xbee-0013a20000000001", metric: "light", value: 11.04, ts: Date.UTC(2004, 2, 31, 3, 38, 15, 757) },
        {
          sensorId: "xbee-0013a20000000001",
          metric: "voltage",
          value: 2.03397,
          ts: Date.UTC(2004, 2, 31, 3, 38, 15, 757),
        },
      ]);
    });
  });
});
