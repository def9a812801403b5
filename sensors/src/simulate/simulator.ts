import { SensorModel, type SimulatedSample } from "./model";
import { seedOf } from "./prng";

export interface SimulatorOptions {
  sensors: number;
  /** Messages per second, all sensors together; sets the spacing of sensor time. */
  rate: number;
  seed: number | string;
  /** Sensor time of the first message (epoch ms). */
  startTs?: number;
  /** Sensor ids are `<prefix>-<n>`. */
  idPrefix?: string;
}

/**
 * N sensors taking turns. Sensor time advances by 1/rate per message, independent of the
 * wall clock, so the same seed and options give the same stream of values everywhere.
 */
export class Simulator {
  readonly models: SensorModel[];
  private i = 0;
  private readonly stepMs: number;
  private ts: number;

  constructor(readonly opts: SimulatorOptions) {
    const seed = seedOf(opts.seed);
    const prefix = opts.idPrefix ?? "sim";
    this.models = Array.from({ length: opts.sensors }, (_, n) => new SensorModel({ sensorId: `${prefix}-${n + 1}`, seed: (seed + n * 0x9e3779b1) >>> 0 }));
    this.stepMs = 1000 / opts.rate;
    this.ts = opts.startTs ?? Date.now();
  }

  next(): SimulatedSample {
    const model = this.models[this.i % this.models.length]!;
    this.i += 1;
    const s = model.sample(Math.round(this.ts));
    this.ts += this.stepMs;
    return s;
  }

  get produced(): number {
    return this.i;
  }
}

export type SimulatorFormat = "multi" | "original";

/** The MQTT topic and payload of one sample, in one of the DataLab's accepted formats. */
export function toMqttMessages(s: SimulatedSample, format: SimulatorFormat, topicRoot = "sensors"): { topic: string; payload: string }[] {
  if (format === "original") {
    // The original DataLab message carries one value and no time.
    return [{ topic: topicRoot, payload: JSON.stringify({ name: s.sensorId, value: s.temperature }) }];
  }
  return [
    {
      topic: `${topicRoot}/${s.sensorId}`,
      payload: JSON.stringify({ sensor: s.sensorId, temperature: s.temperature, humidity: s.humidity, battery: s.battery, ts: s.ts }),
    },
  ];
}
