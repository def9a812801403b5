import mqtt from "mqtt";

export interface FloodOptions {
  mqttUrl: string;
  topicRoot: string;
  messages: number;
  sensors: number;
  /** Messages per second; 0 publishes as fast as the broker acknowledges. */
  rate: number;
  qos: 0 | 1;
  /** Put the publish time in `ts` (for latency), else a fixed sensor time. */
  stampTs?: boolean;
  /** Added to the fixed sensor times, so that a second flood's measurements are new ones. */
  tsOffset?: number;
}

/**
 * Publish single-reading messages ({"sensor","temperature","ts"}) so that messages equal
 * readings. QoS 1 publishes are pipelined: up to 500 unacknowledged at a time.
 */
export async function flood(o: FloodOptions): Promise<{ seconds: number }> {
  const client = await mqtt.connectAsync(o.mqttUrl, { clientId: `bench-flood-${process.pid}-${Date.now()}` });
  const started = performance.now();
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const done = () => {
    inFlight--;
    if (inFlight < 250) wake?.();
  };
  for (let i = 0; i < o.messages; i++) {
    if (o.rate > 0) {
      const due = started + (i * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    const sensor = `bench-${i % o.sensors}`;
    const temperature = (20 + (i % 100) / 10).toFixed(1);
    const ts = o.stampTs ? Date.now() : 1_764_000_000_000 + (o.tsOffset ?? 0) + i;
    const payload = `{"sensor":"${sensor}","temperature":${temperature},"ts":${ts}}`;
    inFlight++;
    client.publish(`${o.topicRoot}/${sensor}`, payload, { qos: o.qos }, done);
    if (inFlight >= 500) await new Promise<void>((r) => (wake = r));
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  const seconds = (performance.now() - started) / 1000;
  await client.endAsync();
  return { seconds };
}

/** A flood under way, timed from its first publish: `publishedAt` is NaN until the last PUBACK. */
export interface TimedFlood {
  t0: number;
  publishedAt: number;
  done: Promise<void>;
}

/** The stages' flood: `messages` single-reading QoS 1 messages from 100 sensors, as fast as the broker takes them. */
export function startFlood(mqttUrl: string, topicRoot: string, messages: number, tsOffset = 0): TimedFlood {
  const f: TimedFlood = { t0: performance.now(), publishedAt: Number.NaN, done: Promise.resolve() };
  f.done = flood({ mqttUrl, topicRoot, messages, sensors: 100, rate: 0, qos: 1, tsOffset }).then(() => {
    f.publishedAt = performance.now();
  });
  return f;
}
