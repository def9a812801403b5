/**
 * SenML units (RFC 8428 §12.1, RFC 8798) for metric names that arrive without a unit, as in
 * `{"sensor":"k1","temperature":21.5}`. The table is the shared one; it comes through the
 * light `@datalab/shared/reading` entry so that a codec, a simulator or the benchmark does
 * not load the logging, metrics and NATS modules that the shared index pulls in.
 */
import { DEFAULT_UNITS } from "@datalab/shared/reading";

export const GENERIC_UNITS: Readonly<Record<string, string>> = DEFAULT_UNITS;

export function genericUnit(metric: string): string | undefined {
  return Object.hasOwn(GENERIC_UNITS, metric) ? GENERIC_UNITS[metric] : undefined;
}
