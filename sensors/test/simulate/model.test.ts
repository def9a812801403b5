import { describe, expect, it } from "vitest";
import { MISBEHAVE_BELOW_V, SATURATED_TEMPERATURE, Simulator, type SimulatedSample } from "../../src/index";

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 1);

function run(opts: ConstructorParameters<typeof Simulator>[0], n: number): SimulatedSample[] {
  const sim = new Simulator(opts);
  return Array.from({ length: n }, () => sim.next());
}

/** Least-squares fit of v = m + a·cos(ωt) + b·sin(ωt), ω one turn a day: the mean and the daily half-swing. */
function dailyFit(ts: number[], v: number[]): { mean: number; amplitude: number } {
  // Whole days of evenly spaced samples make the three regressors orthogonal, so the fit is three averages.
  const n = v.length;
  let m = 0;
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    const w = (2 * Math.PI * (ts[i]! % DAY)) / DAY;
    m += v[i]!;
    a += v[i]! * Math.cos(w);
    b += v[i]! * Math.sin(w);
  }
  return { mean: m / n, amplitude: (2 * Math.hypot(a, b)) / n };
}

function correlation(x: number[], y: number[]): number {
  const mx = x.reduce((s, v) => s + v, 0) / x.length;
  const my = y.reduce((s, v) => s + v, 0) / y.length;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe("simulator statistics match the configuration", () => {
  // One reading a minute for 14 days: 20,160 readings.
  const samples = run(
    {
      sensors: 1,
      rate: 1 / 60,
      seed: "stats",
      startTs: START,
      meanTemperature: 20,
      dailyAmplitude: 3,
      noise: 0.15,
      kinds: ["temperature", "humidity", "light", "pressure", "battery"],
    },
    14 * 1440,
  );
  const ts = samples.map((s) => s.ts);
  const temp = samples.map((s) => s.temperature!);

  it("temperature mean is the configured 20 °C within ±0.02 °C, and the daily amplitude 3 °C within ±0.02 °C", () => {
    const fit = dailyFit(ts, temp);
    expect(Math.abs(fit.mean - 20)).toBeLessThan(0.02);
    expect(Math.abs(fit.amplitude - 3)).toBeLessThan(0.02);
    // The residual is the configured noise (0.15 °C) within 10 %, rounding to 0.01 °C included.
    const phase = phaseOf(ts, temp);
    const residuals = temp.map(
      (v, i) => v - (fit.mean + fit.amplitude * Math.cos(2 * Math.PI * ((ts[i]! % DAY) / DAY - phase))),
    );
    const sd = Math.sqrt(residuals.reduce((acc, r) => acc + r * r, 0) / residuals.length);
    expect(sd).toBeGreaterThan(0.135);
    expect(sd).toBeLessThan(0.165);
  });

  it("the warmest hour is mid-afternoon (14:00–16:00 UTC)", () => {
    const hour = (phaseOf(ts, temp) * 24 + 24) % 24;
    expect(hour).toBeGreaterThan(14);
    expect(hour).toBeLessThan(16);
  });

  it("relative humidity moves against temperature (correlation below −0.9) and stays in 0..100 %RH", () => {
    const hum = samples.map((s) => s.humidity!);
    expect(correlation(temp, hum)).toBeLessThan(-0.9);
    expect(Math.min(...hum)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...hum)).toBeLessThanOrEqual(100);
  });

  it("light is dark at night (below 1 lx from 21:00 to 05:00 UTC) and bright by day (hundreds of lx)", () => {
    const night = samples.filter((s) => ((s.ts % DAY) / 3_600_000 + 3) % 24 < 8).map((s) => s.light!);
    const day = samples.filter((s) => Math.abs((s.ts % DAY) / 3_600_000 - 13) < 1).map((s) => s.light!);
    expect(Math.max(...night)).toBeLessThan(1);
    expect(Math.min(...day)).toBeGreaterThan(200);
  });

  it("pressure stays around sea level (99–104 kPa) and moves with the weather (std deviation above 100 Pa)", () => {
    const p = samples.map((s) => s.pressure!);
    expect(Math.min(...p)).toBeGreaterThan(99_000);
    expect(Math.max(...p)).toBeLessThan(104_000);
    const mean = p.reduce((s, v) => s + v, 0) / p.length;
    expect(Math.sqrt(p.reduce((s, v) => s + (v - mean) ** 2, 0) / p.length)).toBeGreaterThan(100);
  });

  it("the battery decays slowly and never rises while it lasts", () => {
    const v = samples.map((s) => s.battery!);
    expect(v.findIndex((x, i) => i > 0 && x > v[i - 1]!)).toBe(-1);
    expect(v[0]! - v[v.length - 1]!).toBeGreaterThan(0);
    expect(v[v.length - 1]!).toBeGreaterThan(2.9);
  });

  it("without a configured mean or amplitude each sensor draws its own, in 18–24 °C and 1.5–4 °C", () => {
    const sim = new Simulator({ sensors: 20, rate: 1, seed: 9, startTs: START });
    for (const m of sim.models) {
      expect(m.meanTemperature).toBeGreaterThanOrEqual(18);
      expect(m.meanTemperature).toBeLessThanOrEqual(24);
      expect(m.dailyAmplitude).toBeGreaterThanOrEqual(1.5);
      expect(m.dailyAmplitude).toBeLessThanOrEqual(4);
    }
    expect(new Set(sim.models.map((m) => m.meanTemperature)).size).toBe(20);
  });
});

/** Phase (fraction of a day) of the fitted daily peak. */
function phaseOf(ts: number[], v: number[]): number {
  let a = 0;
  let b = 0;
  for (let i = 0; i < v.length; i++) {
    const w = (2 * Math.PI * (ts[i]! % DAY)) / DAY;
    a += v[i]! * Math.cos(w);
    b += v[i]! * Math.sin(w);
  }
  return Math.atan2(b, a) / (2 * Math.PI);
}

describe("a dying battery, as in the Intel Lab data", () => {
  const life = 2_000;
  const samples = run(
    { sensors: 1, rate: 1, seed: "dying", startTs: START, meanTemperature: 20, dailyAmplitude: 2, batteryLife: life },
    2.5 * life,
  );
  const alive = samples.filter((s) => !s.silent);

  it("readings are normal while the voltage is above 2.4 V", () => {
    const healthy = alive.filter((s) => s.battery! >= MISBEHAVE_BELOW_V);
    expect(healthy.length).toBeGreaterThan(life * 0.8);
    expect(healthy.filter((s) => s.temperature! < 17 || s.temperature! > 23 || s.humidity! < 0)).toEqual([]);
  });

  it("below 2.4 V temperature drifts up and spikes to the saturated 122.153 °C, and humidity goes negative", () => {
    const dying = alive.filter((s) => s.battery! < MISBEHAVE_BELOW_V);
    expect(dying.length).toBeGreaterThan(20);
    expect(dying.filter((s) => s.temperature === SATURATED_TEMPERATURE).length).toBeGreaterThan(0);
    expect(dying.filter((s) => s.temperature! > 40 && s.temperature! < SATURATED_TEMPERATURE).length).toBeGreaterThan(
      0,
    );
    expect(dying.some((s) => s.humidity! < 0)).toBe(true);
    // Worse the lower the voltage: the last readings before it goes flat are the furthest off.
    const last = dying.slice(-5);
    for (const s of last) expect(s.temperature!).toBeGreaterThan(60);
  });

  it("a flat battery makes the sensor silent for a while, then a fresh battery brings it back", () => {
    const firstSilent = samples.findIndex((s) => s.silent);
    expect(firstSilent).toBeGreaterThan(life * 0.85);
    expect(firstSilent).toBeLessThan(life * 1.15);
    const back = samples.findIndex((s, i) => i > firstSilent && !s.silent);
    expect(back - firstSilent).toBe(Math.ceil(0.05 * life));
    expect(samples[back]!.battery!).toBeGreaterThan(2.9);
    expect(samples[back]!.temperature!).toBeLessThan(23);
  });
});

describe("clock drift", () => {
  it(
    "each sensor's timestamps run fast or slow within the configured ± ppm, " +
      "and offset within ± the configured seconds",
    () => {
      const sim = new Simulator({
        sensors: 5,
        rate: 5 / 60,
        seed: "clock",
        startTs: START,
        maxClockDriftPpm: 50,
        maxClockOffsetMs: 2_000,
      });
      const first = new Map<string, SimulatedSample>();
      const last = new Map<string, SimulatedSample>();
      const trueTs = (i: number) => START + i * 12_000;
      const firstI = new Map<string, number>();
      const lastI = new Map<string, number>();
      for (let i = 0; i < 5 * 1440 * 10; i++) {
        const s = sim.next();
        if (!first.has(s.sensorId)) first.set(s.sensorId, s), firstI.set(s.sensorId, i);
        last.set(s.sensorId, s);
        lastI.set(s.sensorId, i);
      }
      const drifts: number[] = [];
      for (const [id, f] of first) {
        const l = last.get(id)!;
        const offset = f.ts - trueTs(firstI.get(id)!);
        expect(Math.abs(offset)).toBeLessThanOrEqual(2_000);
        const ppm = ((l.ts - f.ts) / (trueTs(lastI.get(id)!) - trueTs(firstI.get(id)!)) - 1) * 1e6;
        expect(Math.abs(ppm)).toBeLessThanOrEqual(50.1);
        drifts.push(ppm);
      }
      // Ten days at tens of ppm is tens of seconds: the drift is there, and differs per sensor.
      expect(Math.max(...drifts.map(Math.abs))).toBeGreaterThan(5);
      expect(new Set(drifts.map((d) => d.toFixed(3))).size).toBe(5);
    },
  );
});
