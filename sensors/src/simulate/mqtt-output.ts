import mqtt, { type MqttClient } from "mqtt";
import { Simulator, toMqttMessages, type SimulatorFormat, type SimulatorOptions } from "./simulator";

export interface PublishOptions extends SimulatorOptions {
  mqttUrl: string;
  format: SimulatorFormat;
  topicRoot?: string;
  /** Stop after this many samples (default: run until stopped). */
  count?: number;
  qos?: 0 | 1;
  /** Publish as fast as the broker takes it, ignoring `rate` for pacing. */
  unpaced?: boolean;
  onProgress?: (published: number) => void;
  signal?: AbortSignal;
}

/**
 * Publish simulated samples to MQTT at `rate` per second (paced by the wall clock in ticks of
 * 20 ms), waiting for the client's buffer to drain so memory stays bounded at any rate.
 */
export async function publishSimulation(o: PublishOptions): Promise<number> {
  const sim = new Simulator(o);
  const client: MqttClient = await mqtt.connectAsync(o.mqttUrl, { clientId: `datalab-sim-${process.pid}-${Date.now().toString(36)}`, reconnectPeriod: 1_000 });
  const total = o.count ?? Number.POSITIVE_INFINITY;
  const started = Date.now();
  let published = 0;
  try {
    while (published < total && !o.signal?.aborted) {
      const due = o.unpaced ? total : Math.floor(((Date.now() - started) / 1000) * o.rate) + 1;
      let burst = 0;
      while (published < Math.min(due, total) && burst < 1_000) {
        for (const m of toMqttMessages(sim.next(), o.format, o.topicRoot)) {
          await client.publishAsync(m.topic, m.payload, { qos: o.qos ?? 0 });
        }
        published += 1;
        burst += 1;
      }
      o.onProgress?.(published);
      if (published < total && !o.unpaced) await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await client.endAsync();
  }
  return published;
}
