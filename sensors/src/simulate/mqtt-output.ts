import type { FaultOptions } from "./samples/faults";
import { MqttEncoder, type SimulatorFormat } from "./outputs/mqtt-format";
import { MqttOutput } from "./outputs/mqtt";
import type { Speed } from "./pacer";
import { runSimulation, type SimulationStats } from "./run";
import type { SimulatorOptions } from "./simulator";

export interface PublishOptions extends SimulatorOptions, FaultOptions {
  mqttUrl: string;
  format: SimulatorFormat;
  topicRoot?: string;
  /** Stop after this many reading cycles (default: run until stopped). */
  count?: number;
  qos?: 0 | 1;
  /** Publish as fast as the broker takes it (the same as speed "max"). */
  unpaced?: boolean;
  speed?: Speed;
  /** Reading cycles done so far. */
  onProgress?: (cycles: number, stats: SimulationStats) => void;
  signal?: AbortSignal;
}

/**
 * Publish simulated sensors to MQTT: the simulator into an MQTT output, paced by sensor time
 * (`rate` cycles per simulated second, `speed` times the wall clock). Returns the number of
 * reading cycles run, which is the number of messages published when no fault is configured.
 */
export async function publishSimulation(o: PublishOptions): Promise<number> {
  const output = await MqttOutput.connect({ url: o.mqttUrl, qos: o.qos ?? 0 });
  let stats: SimulationStats;
  try {
    stats = await runSimulation(
      { ...o, speed: o.unpaced ? "max" : (o.speed ?? 1), onProgress: (s) => o.onProgress?.(s.cycles, s) },
      new MqttEncoder(o.format, o.topicRoot),
      output,
    );
  } catch (err) {
    await output.close().catch(() => undefined);
    throw err;
  }
  await output.close();
  return stats.cycles;
}
