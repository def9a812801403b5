import { DEFAULT_KINDS, type SensorKind, type SimulatedSample } from "./samples/kinds";
import { SensorModel } from "./model";
import { seedOf } from "./samples/prng";

export { toMqttMessages, type SimulatorFormat } from "./outputs/mqtt-format";

export interface SimulatorOptions {
  sensors: number;
  /** Reading cycles per simulated second, all sensors together; sets the spacing of sensor time. */
  rate: number;
  seed: number | string;
  /** True time of the first reading cycle (epoch ms); default now. */
  startTs?: number;
  /** Sensor ids are `<prefix>-<n>`. */
  idPrefix?: string;
  /** What each sensor measures (default temperature, humidity, battery). */
  kinds?: readonly SensorKind[];
  /** Same mean / daily half-swing for every sensor; default drawn per sensor. */
  meanTemperature?: number;
  dailyAmplitude?: number;
  /** Temperature noise, standard deviation in °C (default 0.15). */
  noise?: number;
  /** Reading cycles a battery lasts from full to flat (default 5,000,000). */
  batteryLife?: number;
  /** Each sensor's clock gets an offset and a drift drawn uniformly within ± these. */
  maxClockOffsetMs?: number;
  maxClockDriftPpm?: number;
}

/**
 * N sensors taking turns. True time advances by 1/rate per reading cycle, independent of the
 * wall clock, so the same seed and options give the same stream of values everywhere.
 */
export class Simulator {
  readonly models: SensorModel[];
  readonly kinds: readonly SensorKind[];
  private i = 0;
  private readonly stepMs: number;
  private readonly startTs: number;

  constructor(readonly opts: SimulatorOptions) {
    const seed = seedOf(opts.seed);
    const prefix = opts.idPrefix ?? "sim";
    this.kinds = opts.kinds ?? DEFAULT_KINDS;
    this.stepMs = 1000 / opts.rate;
    this.startTs = opts.startTs ?? Date.now();
    this.models = Array.from(
      { length: opts.sensors },
      (_, n) =>
        new SensorModel({
          sensorId: `${prefix}-${n + 1}`,
          seed: (seed + n * 0x9e3779b1) >>> 0,
          kinds: this.kinds,
          clockOrigin: this.startTs,
          ...pick(opts, [
            "meanTemperature",
            "dailyAmplitude",
            "noise",
            "batteryLife",
            "maxClockOffsetMs",
            "maxClockDriftPpm",
          ]),
        }),
    );
  }

  /** The next reading cycle (a flat-battery sensor's cycle comes back with `silent`). */
  next(): SimulatedSample {
    const model = this.models[this.i % this.models.length]!;
    // Multiply rather than accumulate, so sensor time does not drift by rounding over millions of steps.
    const s = model.sample(Math.round(this.startTs + this.i * this.stepMs));
    this.i += 1;
    return s;
  }

  get produced(): number {
    return this.i;
  }
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
