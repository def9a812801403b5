import { DecodedReading, DecodeError, isDecodedReading, isMessageSource, MessageSource } from "@datalab/shared";
import type { z } from "zod";

/**
 * Check every decoded reading against the Reading contract. A message is accepted whole or
 * quarantined whole: half a message in the outbox would be a silent loss of the other half.
 */
export function validateReadings(readings: readonly unknown[]): DecodedReading[] {
  const out: DecodedReading[] = [];
  for (const r of readings) {
    // Certainly valid: kept as it is. Otherwise zod decides, and explains a refusal.
    if (isDecodedReading(r)) {
      out.push(r);
      continue;
    }
    const parsed = DecodedReading.safeParse(r);
    if (!parsed.success) throw new DecodeError(reasonOf(parsed.error), describe(parsed.error, r));
    out.push(parsed.data);
  }
  return out;
}

/**
 * Check a message's source (`mqtt:<topic>`) against the same contract the hub applies: a topic
 * too long or holding control characters is quarantined here rather than refused by the hub.
 */
export function checkSource(source: string): void {
  if (isMessageSource(source)) return;
  const parsed = MessageSource.safeParse(source);
  if (parsed.success) return;
  const why = parsed.error.issues.map((i) => i.message).join("; ");
  throw new DecodeError(
    "bad_source",
    `${why} (source ${JSON.stringify(source.slice(0, 64))}${source.length > 64 ? "..." : ""})`,
  );
}

function reasonOf(err: z.ZodError): string {
  const key = err.issues[0]?.path[0];
  switch (key) {
    case "sensorId":
      return "bad_sensor_id";
    case "metric":
      return "bad_metric";
    case "value":
      return "bad_value";
    case "unit":
      return "bad_unit";
    case "ts":
      return "bad_timestamp";
    default:
      return "invalid";
  }
}

function describe(err: z.ZodError, r: unknown): string {
  const sensor = (r as { sensorId?: unknown })?.sensorId;
  const where = typeof sensor === "string" ? ` (sensor ${JSON.stringify(sensor.slice(0, 64))})` : "";
  return err.issues.map((i) => `${i.path.join(".") || "reading"}: ${i.message}`).join("; ") + where;
}
