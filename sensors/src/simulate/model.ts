import { Prng } from "./prng";

const DAY_MS = 86_400_000;

export interface SimulatedSample {
  sensorId: string;
  /** Sensor time, epoch ms. */
  ts: number;
  temperature: number;
  humidity: number;
  battery: number;
}

export interface SensorModelOptions {
  sensorId: string;
  seed: number;
  /** Mean temperature (°C) and half the daily swing. */
  meanTemperature?: number;
  dailyAmplitude?: number;
  /** Standard deviation of the measurement noise (°C). */
  noise?: number;
}

/**
 * One simulated sensor: temperature follows a daily cycle (coolest before dawn, warmest mid
 * afternoon) plus noise; relative humidity moves against temperature, as it does in a room
 * whose absolute humidity changes slowly; the battery decays slowly from about 3.0 V.
 */
export class SensorModel {
  readonly sensorId: string;
  private readonly rng: Prng;
  private readonly mean: number;
  private readonly amplitude: number;
  private readonly noise: number;
  private readonly phase: number;
  private readonly humidityBase: number;
  private battery: number;

  constructor(o: SensorModelOptions) {
    this.sensorId = o.sensorId;
    this.rng = new Prng(o.seed);
    this.mean = o.meanTemperature ?? this.rng.between(18, 24);
    this.amplitude = o.dailyAmplitude ?? this.rng.between(1.5, 4);
    this.noise = o.noise ?? 0.15;
    // Peak around 15:00 UTC, give or take an hour per sensor.
    this.phase = (15 + this.rng.between(-1, 1)) / 24;
    this.humidityBase = this.rng.between(40, 55);
    this.battery = this.rng.between(2.95, 3.05);
  }

  /** The expected (noise-free) temperature at `ts`. */
  expectedTemperature(ts: number): number {
    const dayFraction = (ts % DAY_MS) / DAY_MS;
    return this.mean + this.amplitude * Math.cos(2 * Math.PI * (dayFraction - this.phase));
  }

  sample(ts: number): SimulatedSample {
    const temperature = this.expectedTemperature(ts) + this.noise * this.rng.gaussian();
    const humidity = clamp(this.humidityBase - 2.2 * (temperature - this.mean) + 0.8 * this.rng.gaussian(), 0, 100);
    this.battery = Math.max(1.8, this.battery - 2e-6 * (1 + this.rng.next()));
    return {
      sensorId: this.sensorId,
      ts,
      temperature: round(temperature, 2),
      humidity: round(humidity, 1),
      battery: round(this.battery, 3),
    };
  }

  get meanTemperature(): number {
    return this.mean;
  }
  get dailyAmplitude(): number {
    return this.amplitude;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
