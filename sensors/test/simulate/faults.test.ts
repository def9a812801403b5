import { describe, expect, it } from "vitest";
import { createMessageDecoder, createParser } from "../../src/protocols/index";
import {
  createSerialEncoder,
  FaultInjector,
  MqttEncoder,
  sampleToMessage,
  seedOf,
  Simulator,
  type Emission,
  type FaultOptions,
  type MessageEncoder,
} from "../../src/index";

const START = Date.UTC(2026, 0, 1);
const KINDS = ["temperature", "humidity", "battery"] as const;

function stream(seed: string, faults: FaultOptions, cycles: number): Emission[] {
  const sim = new Simulator({ sensors: 10, rate: 10, seed, startTs: START });
  const f = new FaultInjector(seedOf(seed), faults);
  const out: Emission[] = [];
  for (let i = 0; i < cycles; i++) out.push(...f.apply(sim.next()));
  out.push(...f.flush());
  return out;
}

function bytes(encoder: MessageEncoder, emissions: Emission[]): Buffer[] {
  return emissions.flatMap((e) =>
    encoder
      .encode(sampleToMessage(e.sample, KINDS), e.malformed)
      .map((m) => Buffer.concat([Buffer.from(m.topic), m.payload])),
  );
}

/** What the gateway's MQTT side accepts: the DataLab JSON codec, the same one a JSON-lines radio uses. */
const mqttJson = createMessageDecoder("jsonl");
function acceptedAsMqttJson(payload: Buffer): boolean {
  return mqttJson(payload).kind === "readings";
}

/**
 * ±4.5 standard deviations of a binomial proportion: fails by chance about once in 150,000 runs
 * (and the seed is fixed).
 */
function tolerance(p: number, n: number): number {
  return 4.5 * Math.sqrt((p * (1 - p)) / n);
}

describe("faults", () => {
  const N = 20_000;

  it("the same seed gives the same stream, byte for byte, faults included; another seed does not", () => {
    const faults = { dropoutRate: 0.02, duplicateRate: 0.01, reorderRate: 0.01, malformedRate: 0.03 };
    const enc = () => new MqttEncoder("multi", "t");
    const a = bytes(enc(), stream("same", faults, 5_000));
    const b = bytes(enc(), stream("same", faults, 5_000));
    const c = bytes(enc(), stream("other", faults, 5_000));
    expect(a.length).toBeGreaterThan(4_800);
    expect(Buffer.concat(a).equals(Buffer.concat(b))).toBe(true);
    expect(Buffer.concat(a).equals(Buffer.concat(c))).toBe(false);
  });

  it(
    `the malformed rate matches its setting (0.05 ± 4.5σ over ${N} cycles), ` +
      `and exactly the flagged payloads fail to decode`,
    () => {
      const rate = 0.05;
      const emissions = stream("malformed", { malformedRate: rate }, N);
      expect(emissions).toHaveLength(N);
      const mqtt = new MqttEncoder("multi", "t");
      const flagged = emissions.map((e) => e.malformed !== undefined);
      const rejected = emissions.map(
        (e) => !acceptedAsMqttJson(mqtt.encode(sampleToMessage(e.sample, KINDS), e.malformed)[0]!.payload),
      );
      expect(rejected).toEqual(flagged);
      const observed = rejected.filter(Boolean).length / N;
      expect(Math.abs(observed - rate)).toBeLessThan(tolerance(rate, N));

      // The same through a radio codec: each flagged JSON line is an error for the JSON-lines parser,
      // the others readings.
      const codec = createParser("jsonl");
      const enc = createSerialEncoder("jsonl");
      const outcome = emissions.map((e) => {
        const outs = codec.push(enc.encode(sampleToMessage(e.sample, KINDS), e.malformed)[0]!.payload);
        return outs.length === 1 ? outs[0]!.kind : `${outs.length} outputs`;
      });
      expect(outcome.filter((k) => k !== "error" && k !== "readings")).toEqual([]);
      expect(outcome.map((k) => k === "error")).toEqual(flagged);
    },
  );

  it("every malformed variant of every output is refused by the matching parser", () => {
    for (const protocol of ["jsonl", "mysensors", "xbee", "xbee2", "rtl433"] as const) {
      const enc = createSerialEncoder(protocol);
      const codec = createParser(protocol);
      const sim = new Simulator({ sensors: 3, rate: 1, seed: protocol, startTs: START });
      // Warm up: the first MySensors message of a node carries its presentation lines.
      for (let i = 0; i < 3; i++) codec.push(enc.encode(sampleToMessage(sim.next(), KINDS))[0]!.payload);
      enc.malformedVariants.forEach((variant, v) => {
        const payload = enc.encode(sampleToMessage(sim.next(), KINDS), { variant: v, at: 0.37 })[0]!.payload;
        const errors = [...codec.push(payload), ...codec.flush()].filter((o) => o.kind === "error");
        expect(errors.length, `${protocol} ${variant}: ${payload.toString("hex")}`).toBe(1);
      });
    }
  });

  it(
    "dropouts, duplicates and reordering happen at their configured rates (± 4.5σ), " +
      "and never change the values sent",
    () => {
      const faults = { dropoutRate: 0.1, duplicateRate: 0.05, reorderRate: 0.02 };
      const faulty = stream("rates", faults, N);
      const clean = new Map(stream("rates", {}, N).map((e) => [`${e.sample.sensorId}#${e.sample.n}`, e.sample]));
      const dropped = N - new Set(faulty.map((e) => `${e.sample.sensorId}#${e.sample.n}`)).size;
      expect(Math.abs(dropped / N - 0.1)).toBeLessThan(tolerance(0.1, N));
      const sent = N - dropped;
      const dups = faulty.filter((e) => e.duplicate).length;
      expect(Math.abs(dups / sent - 0.05)).toBeLessThan(tolerance(0.05, sent));
      // A reordered message is followed, in sensor-time order, by one that overtook it.
      const late = faulty.filter((e) => e.reordered && !e.duplicate).length;
      expect(Math.abs(late / sent - 0.02)).toBeLessThan(tolerance(0.02, sent) + 0.002);
      let inversions = 0;
      for (let i = 1; i < faulty.length; i++) if (faulty[i]!.sample.ts < faulty[i - 1]!.sample.ts) inversions += 1;
      expect(inversions).toBe(late);
      const changed = faulty.filter(
        (e) => JSON.stringify(e.sample) !== JSON.stringify(clean.get(`${e.sample.sensorId}#${e.sample.n}`)),
      );
      expect(changed).toEqual([]);
    },
  );

  it("a sensor with a flat battery sends nothing while it is flat", () => {
    const sim = new Simulator({ sensors: 1, rate: 1, seed: "flat", startTs: START, batteryLife: 100 });
    const f = new FaultInjector(1, {});
    let silent = 0;
    let sent = 0;
    for (let i = 0; i < 300; i++) {
      const s = sim.next();
      const e = f.apply(s);
      if (s.silent) {
        silent += 1;
        expect(e).toEqual([]);
      } else sent += e.length;
    }
    expect(silent).toBeGreaterThan(0);
    expect(f.counts.batteryFlat).toBe(silent);
    expect(sent).toBe(300 - silent);
  });
});
