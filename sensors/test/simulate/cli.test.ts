/** `pnpm sensors simulate`, run as a child process: the command line people and scripts use. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@datalab/shared/testing";
import { createParser } from "../../src/protocols/index";
import { SIMULATE_FLAGS } from "../../src/simulate/command";
import { REPLAY_FLAGS } from "../../src/replay/command";
import { openReader, sensorsCli, startPtyPair, type PtyPair } from "./processes";

const sensors = sensorsCli;

describe("pnpm sensors simulate (the CLI)", () => {
  it("--help documents every option of both commands", async () => {
    const r = await sensors("--help");
    expect(r.code).toBe(0);
    const help = r.stdout.toString();
    for (const flag of [...Object.keys(SIMULATE_FLAGS), ...Object.keys(REPLAY_FLAGS)])
      expect(help, flag).toContain(`--${flag}`);
    expect(help).toContain("DATALAB_MQTT_URL");
  });

  it("the same seed and start give the same stream; faults and kinds come from the flags", async () => {
    const args = [
      "simulate",
      "--sensors",
      "3",
      "--count",
      "2000",
      "--seed",
      "cli",
      "--start",
      "2026-01-01T00:00:00Z",
      "--speed",
      "max",
      "--out",
      "stdout",
      "--kinds",
      "temperature,light",
      "--malformed-rate",
      "0.1",
      "--duplicate-rate",
      "0.05",
      "-q",
    ];
    const [a, b] = await Promise.all([sensors(...args), sensors(...args)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout.length).toBe(b.stdout.length);
    expect(a.stdout.equals(b.stdout)).toBe(true);
    const outs = createParser("jsonl").push(a.stdout);
    const bad = outs.filter((o) => o.kind === "error").length;
    const good = outs.flatMap((o) => (o.kind === "readings" ? o.readings : []));
    // 2,000 cycles + about 100 duplicates; about 10 % malformed (± 4.5σ ≈ 0.03).
    expect(outs.length).toBeGreaterThan(2_050);
    expect(Math.abs(bad / outs.length - 0.1)).toBeLessThan(0.03);
    expect(new Set(good.map((r) => r.metric))).toEqual(new Set(["temperature", "light"]));
    expect(a.stderr).toMatch(/simulated 2000 reading cycles of 3 sensors; sent \d+ messages to stdout:jsonl/);
    expect(a.stderr).toMatch(
      /faults: 0 dropped, 0 silent \(flat battery\), \d+ duplicated, 0 reordered, \d+ malformed/,
    );
  });

  it("exits 2 naming every bad flag", async () => {
    const r = await sensors(
      "simulate",
      "--sensors",
      "0",
      "--qos",
      "2",
      "--kinds",
      "temperature,co2",
      "--malformed-rate",
      "1.5",
      "--rate",
      "1",
      "--interval",
      "60",
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--sensors="0": expected a number ≥ 1/);
    expect(r.stderr).toMatch(/--qos="2": expected 0 or 1/);
    expect(r.stderr).toMatch(/--kinds="temperature,co2": expected kinds among/);
    expect(r.stderr).toMatch(/--malformed-rate="1.5": expected a number ≤ 1/);
    expect(r.stderr).toMatch(/give --rate or --interval, not both/);
  });

  describe("to a serial port", () => {
    let pty: PtyPair;
    beforeAll(async () => {
      pty = await startPtyPair();
    });
    afterAll(async () => {
      await pty?.stop();
    });

    it("writes JSON lines to serial:PATH@BAUD:jsonl, every one arriving whole", async () => {
      const reader = await openReader(pty.b);
      const r = await sensors(
        "simulate",
        "--sensors",
        "4",
        "--count",
        "500",
        "--speed",
        "max",
        "--out",
        `serial:${pty.a}@115200:jsonl`,
        "--kinds",
        "temperature,humidity,light,pressure,battery",
        "-q",
      );
      expect(r.code, r.stderr).toBe(0);
      const readings = await waitFor(() => {
        const rs = createParser("jsonl")
          .push(reader.received())
          .flatMap((o) => (o.kind === "readings" ? o.readings : []));
        return rs.length === 2_500 ? rs : undefined;
      }, "2,500 readings from the pty");
      await reader.close();
      expect(new Set(readings.map((x) => x.sensorId))).toEqual(new Set(["sim-1", "sim-2", "sim-3", "sim-4"]));
    });
  });
});
