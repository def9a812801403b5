import {
  Battery,
  SATURATED_TEMPERATURE,
  dyingHumidity,
  dyingTemperature,
  misbehaviourLevel,
  SensorClock,
} from "./behaviours";
import { DEFAULT_KINDS, type SensorKind, type SimulatedSample } from "./samples/kinds";
import { Prng } from "./samples/prng";

export type { SimulatedSample } from "./samples/kinds";

const DAY_MS = 86_400_000;
/** Reading cycles a default battery lasts: about 9.5 years at one reading a minute. */
export const DEFAULT_BATTERY_LIFE = 5_000_000;

export interface SensorModelOptions {
  sensorId: string;
  seed: number;
  kinds?: readonly SensorKind[];
  /** Mean temperature (°C); default drawn per sensor in 18..24. */
  meanTemperature?: number;
  /** Half the daily swing (°C); default drawn per sensor in 1.5..4. */
  dailyAmplitude?: number;
  /** Standard deviation of the temperature measurement noise (°C). */
  noise?: number;
  /** Reading cycles from a full battery to a flat one. */
  batteryLife?: number;
  /** Sensor clock: true time of power-up, and the largest offset and drift a sensor draws. */
  clockOrigin?: number;
  maxClockOffsetMs?: number;
  maxClockDriftPpm?: number;
}

/**
 * One simulated sensor in a room:
 * - temperature follows a daily cycle (coolest before dawn, warmest mid-afternoon) plus noise;
 * - relative humidity moves against temperature, as it does in a room whose absolute humidity
 *   changes slowly;
 * - light is daylight through a window (about 07:00–19:00) plus lamps during working hours;
 * - pressure wanders with passing weather systems (periods of days) and the twice-daily
 *   atmospheric tide;
 * - the battery runs down, and as it dies the sensor misbehaves (see behaviours.ts).
 * Every cycle draws the same random numbers whatever the kinds, so adding a kind or a fault
 * never changes the values of the others for the same seed.
 */
export class SensorModel {
  readonly sensorId: string;
  readonly kinds: readonly SensorKind[];
  private readonly rng: Prng;
  private readonly mean: number;
  private readonly amplitude: number;
  private readonly noise: number;
  private readonly phase: number;
  private readonly humidityBase: number;
  private readonly daylightPeak: number;
  private readonly lampLux: number;
  private readonly weatherPhase: [number, number];
  private readonly battery: Battery;
  private readonly clock: SensorClock;
  private cycles = 0;

  constructor(o: SensorModelOptions) {
    this.sensorId = o.sensorId;
    this.kinds = o.kinds ?? DEFAULT_KINDS;
    this.rng = new Prng(o.seed);
    const r = this.rng;
    const mean = r.between(18, 24);
    const amplitude = r.between(1.5, 4);
    this.mean = o.meanTemperature ?? mean;
    this.amplitude = o.dailyAmplitude ?? amplitude;
    this.noise = o.noise ?? 0.15;
    // Peak around 15:00 UTC, give or take an hour per sensor.
    this.phase = (15 + r.between(-1, 1)) / 24;
    this.humidityBase = r.between(40, 55);
    this.daylightPeak = r.between(200, 900);
    this.lampLux = r.between(250, 450);
    this.weatherPhase = [r.between(0, 2 * Math.PI), r.between(0, 2 * Math.PI)];
    const offset = (2 * r.next() - 1) * (o.maxClockOffsetMs ?? 0);
    const drift = (2 * r.next() - 1) * (o.maxClockDriftPpm ?? 0);
    this.clock = new SensorClock(o.clockOrigin ?? 0, offset, drift);
    this.battery = new Battery(o.batteryLife ?? DEFAULT_BATTERY_LIFE, r);
  }

  /** The expected (noise-free) temperature at true time `ts`. */
  expectedTemperature(ts: number): number {
    const dayFraction = (ts % DAY_MS) / DAY_MS;
    return this.mean + this.amplitude * Math.cos(2 * Math.PI * (dayFraction - this.phase));
  }

  /** One reading cycle at true time `trueTs`. */
  sample(trueTs: number): SimulatedSample {
    const r = this.rng;
    const gT = r.gaussian();
    const gH = r.gaussian();
    const gL = r.gaussian();
    const gP = r.gaussian();
    const uSpike = r.next();
    const volts = this.battery.step();
    this.cycles += 1;
    const s: SimulatedSample = { sensorId: this.sensorId, n: this.cycles, ts: this.clock.read(trueTs) };
    if (volts === undefined) {
      s.silent = true;
      return s;
    }
    const level = misbehaviourLevel(volts);
    const expected = this.expectedTemperature(trueTs);
    for (const k of this.kinds) {
      switch (k) {
        case "temperature":
          // The saturated value is kept to the Intel Lab's three decimals, everything else to 0.01 °C.
          s.temperature = roundUnlessSaturated(dyingTemperature(expected + this.noise * gT, level, uSpike));
          break;
        case "humidity":
          s.humidity = round(
            dyingHumidity(clamp(this.humidityBase - 2.2 * (expected - this.mean) + 0.8 * gH, 0, 100), level),
            1,
          );
          break;
        case "light":
          s.light = round(this.light(trueTs, gL), 1);
          break;
        case "pressure":
          s.pressure = Math.round(this.pressure(trueTs, gP * (1 + 10 * level)));
          break;
        case "battery":
          s.battery = round(volts, 3);
          break;
      }
    }
    return s;
  }

  private light(ts: number, g: number): number {
    const hour = ((ts % DAY_MS) / DAY_MS) * 24;
    const sun = Math.max(0, Math.cos((2 * Math.PI * (hour - 13)) / 24));
    const lamps = hour >= 8 && hour < 18 ? this.lampLux : 0;
    return Math.max(0, (this.daylightPeak * sun ** 1.5 + lamps) * (1 + 0.03 * g));
  }

  private pressure(ts: number, g: number): number {
    const days = ts / DAY_MS;
    const [p1, p2] = this.weatherPhase;
    return (
      101_325 +
      600 * Math.sin((2 * Math.PI * days) / 4.3 + p1) +
      250 * Math.sin((2 * Math.PI * days) / 1.3 + p2) +
      80 * Math.cos(4 * Math.PI * (days - 10 / 24)) +
      8 * g
    );
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

function roundUnlessSaturated(t: number): number {
  return t === SATURATED_TEMPERATURE ? t : round(t, 2);
}
