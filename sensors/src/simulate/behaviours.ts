import type { Prng } from "./samples/prng";

/**
 * What happens inside one sensor over its life, apart from the physics it measures:
 * its battery runs down, it misbehaves as the battery dies, and its clock drifts.
 */

/** Below this voltage (under load) the Intel Lab motes' readings go wrong; at FLAT_V they stop. */
export const MISBEHAVE_BELOW_V = 2.4;
export const FLAT_V = 2.0;
/**
 * The value the Intel Lab's SHT11 temperature channel saturates at when a mote's supply sags:
 * `2004-03-31 03:38:15.757551 2 1 122.153 -3.91901 11.04 2.03397` (fixtures/intel-lab).
 */
export const SATURATED_TEMPERATURE = 122.153;
/** Humidity the same motes report near a flat battery (−3.9 %RH in the line above). */
export const SATURATED_HUMIDITY = -4;

/**
 * Two alkaline AA cells: a slow, nearly linear fall from about 3.0 V, then the knee at the end
 * of life (the f^6 term) that real discharge curves show. `life` is the number of reading
 * cycles from full to flat; each cycle draws a little more or less, as radio retries do.
 * A flat battery keeps the sensor silent for a while (5 % of its life), then someone changes it.
 */
export class Battery {
  private used = 0;
  private full: number;
  private flatFor = 0;

  constructor(
    private readonly life: number,
    private readonly rng: Prng,
  ) {
    this.full = rng.between(2.95, 3.1);
  }

  /** Reading cycles a flat battery stays flat before it is changed. */
  get flatCycles(): number {
    return Math.max(1, Math.ceil(0.05 * this.life));
  }

  private replace(u: number): void {
    this.used = 0;
    this.full = 2.95 + 0.15 * u;
  }

  /** Advances one reading cycle: the voltage under load, or undefined while the battery is flat. */
  step(): number | undefined {
    const u = this.rng.next();
    if (this.flatFor > 0) {
      this.flatFor -= 1;
      if (this.flatFor === 0) this.replace(u);
      return undefined;
    }
    this.used += (0.9 + 0.2 * u) / this.life;
    if (this.used >= 1) {
      // Silent for flatCycles cycles in all, this one included.
      this.flatFor = this.flatCycles - 1;
      if (this.flatFor === 0) this.replace(u);
      return undefined;
    }
    const f = this.used;
    return this.full - 0.45 * f - (this.full - 0.45 - FLAT_V) * f ** 6;
  }
}

/** How far gone a sensor is: 0 above MISBEHAVE_BELOW_V, 1 at a flat battery. */
export function misbehaviourLevel(voltage: number): number {
  if (voltage >= MISBEHAVE_BELOW_V) return 0;
  return Math.min(1, (MISBEHAVE_BELOW_V - voltage) / (MISBEHAVE_BELOW_V - FLAT_V));
}

/**
 * A dying mote's temperature creeps up towards the saturated value and sometimes jumps
 * straight to it (the Intel Lab data shows both), and its humidity sinks below zero.
 * `u` is a uniform draw, taken by the caller every cycle so the stream stays aligned.
 */
export function dyingTemperature(t: number, level: number, u: number): number {
  if (level === 0) return t;
  if (u < 0.25 * level) return SATURATED_TEMPERATURE;
  return t + level * level * (SATURATED_TEMPERATURE - t);
}

export function dyingHumidity(h: number, level: number): number {
  return level === 0 ? h : h * (1 - level) + SATURATED_HUMIDITY * level;
}

/**
 * A sensor's real-time clock: set with an offset at power-up and running fast or slow by a
 * few tens of ppm (a 32 kHz crystal's tolerance), so its timestamps wander from true time.
 */
export class SensorClock {
  constructor(
    private readonly origin: number,
    private readonly offsetMs: number,
    private readonly driftPpm: number,
  ) {}

  read(trueMs: number): number {
    return Math.round(trueMs + this.offsetMs + (trueMs - this.origin) * this.driftPpm * 1e-6);
  }
}
