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

export interface FloodResult {
  seconds: number;
  /** Seconds the publisher waited with its window full: how far the broker's acks held it back. */
  stalled: number;
}

/**
 * Publish single-reading messages ({"sensor","temperature","ts"}) so that messages equal
 * readings. QoS 1 publishes are pipelined: up to `floodWindow()` unacknowledged at a time.
 */
export async function flood(o: FloodOptions): Promise<FloodResult> {
  const client = await mqtt.connectAsync(o.mqttUrl, { clientId: `bench-flood-${process.pid}-${Date.now()}` });
  const window = floodWindow();
  const started = performance.now();
  let inFlight = 0;
  let stalled = 0;
  let wake: (() => void) | undefined;
  const done = () => {
    inFlight--;
    if (inFlight < window / 2) wake?.();
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
    if (inFlight >= window) {
      const t = performance.now();
      await new Promise<void>((r) => (wake = r));
      stalled += performance.now() - t;
    }
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  const seconds = (performance.now() - started) / 1000;
  await client.endAsync();
  return { seconds, stalled: stalled / 1000 };
}

/** QoS 1 publishes a flood keeps unacknowledged unless DATALAB_BENCH_FLOOD_WINDOW says otherwise. */
export const DEFAULT_FLOOD_WINDOW = 500;

/** DATALAB_BENCH_FLOOD_WINDOW: the flood's window of unacknowledged publishes (a diagnostic). */
export function floodWindow(): number {
  const n = Number(process.env.DATALAB_BENCH_FLOOD_WINDOW ?? DEFAULT_FLOOD_WINDOW);
  if (!Number.isSafeInteger(n) || n < 2)
    throw new Error(`DATALAB_BENCH_FLOOD_WINDOW is not a count of 2 or more: ${n}`);
  return n;
}

/** A flood under way, timed from its first publish: `publishedAt` and `stalled` are NaN until the last PUBACK. */
export interface TimedFlood {
  t0: number;
  publishedAt: number;
  stalled: number;
  done: Promise<void>;
}

/** The stages' flood: `messages` single-reading QoS 1 messages from 100 sensors, as fast as the broker takes them. */
export function startFlood(mqttUrl: string, topicRoot: string, messages: number, tsOffset = 0): TimedFlood {
  const f: TimedFlood = {
    t0: performance.now(),
    publishedAt: Number.NaN,
    stalled: Number.NaN,
    done: Promise.resolve(),
  };
  f.done = flood({ mqttUrl, topicRoot, messages, sensors: 100, rate: 0, qos: 1, tsOffset }).then((r) => {
    f.publishedAt = performance.now();
    f.stalled = r.stalled;
  });
  return f;
}
