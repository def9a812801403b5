/**
 * SenML units (RFC 8428 §12.1, RFC 8798) for metric names that arrive without a unit, as in
 * `{"sensor":"k1","temperature":21.5}`. Mirrors `DEFAULT_UNITS` in shared/src/reading.ts:
 * the codecs import only types from @datalab/shared so that a simulator or the benchmark
 * does not load the logging, metrics and NATS modules that the shared index pulls in.
 */
export const GENERIC_UNITS: Readonly<Record<string, string>> = Object.freeze({
  temperature: "Cel",
  humidity: "%RH",
  light: "lx",
  illuminance: "lx",
  voltage: "V",
  battery: "V",
  battery_voltage: "V",
  battery_level: "%EL",
  pressure: "Pa",
});

export function genericUnit(metric: string): string | undefined {
  return Object.hasOwn(GENERIC_UNITS, metric) ? GENERIC_UNITS[metric] : undefined;
}
