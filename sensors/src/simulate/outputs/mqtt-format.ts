import type { MalformedSpec } from "../samples/faults";
import { SENSOR_KINDS, type SensorMessage, type SimulatedSample, sampleToMessage } from "../samples/kinds";
import { JSON_MALFORMED, malformJson, pickVariant } from "./malformed";
import type { MessageEncoder, OutMessage } from "./types";

export type SimulatorFormat = "multi" | "original";

/**
 * The multi-metric object: `{"sensor": id, <metric>: value, ..., "units": {metric: unit}, "ts": ms}`.
 * The units are always stated: the decoders never guess a unit from a metric's name.
 */
export function multiObject(m: SensorMessage): Record<string, unknown> {
  const o: Record<string, unknown> = { sensor: m.sensorId };
  let units: Record<string, string> | undefined;
  for (const x of m.metrics) {
    o[x.metric] = x.value;
    if (x.unit !== undefined) (units ??= {})[x.metric] = x.unit;
  }
  if (units) o.units = units;
  if (m.ts !== undefined) o.ts = m.ts;
  return o;
}

/**
 * MQTT in the DataLab's accepted formats:
 * - multi: the object above on `<topicRoot>/<sensor id>`;
 * - original: the original DataLab `{"name", "value"}` on `<topicRoot>`, carrying the first
 *   metric only and no time, as the original did.
 */
export class MqttEncoder implements MessageEncoder {
  readonly name: string;
  readonly malformedVariants = JSON_MALFORMED;

  constructor(
    private readonly format: SimulatorFormat,
    private readonly topicRoot = "sensors",
  ) {
    this.name = `mqtt-${format}`;
  }

  encode(m: SensorMessage, malformed?: MalformedSpec): OutMessage[] {
    let obj: Record<string, unknown>;
    let topic: string;
    let valueKey: string | undefined;
    if (this.format === "original") {
      const first = m.metrics[0];
      if (first === undefined) return [];
      obj = { name: m.sensorId, value: first.value };
      topic = this.topicRoot;
      valueKey = "value";
    } else {
      obj = multiObject(m);
      topic = `${this.topicRoot}/${m.sensorId}`;
      valueKey = m.metrics[0]?.metric;
    }
    const payload = malformed
      ? malformJson(obj, valueKey, pickVariant(JSON_MALFORMED, malformed.variant), malformed.at)
      : Buffer.from(JSON.stringify(obj));
    return [{ topic, payload }];
  }
}

/** The MQTT topic and payload of one sample, in one of the DataLab's accepted formats. */
export function toMqttMessages(
  s: SimulatedSample,
  format: SimulatorFormat,
  topicRoot = "sensors",
): { topic: string; payload: string }[] {
  const kinds = SENSOR_KINDS.filter((k) => s[k] !== undefined);
  return new MqttEncoder(format, topicRoot)
    .encode(sampleToMessage(s, kinds))
    .map((m) => ({ topic: m.topic, payload: m.payload.toString() }));
}
