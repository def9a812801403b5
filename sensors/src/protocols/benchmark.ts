/**
 * Parser + decode throughput, one core, per protocol (used by bench.ts and `pnpm bench`).
 * Input is generated with the encoders (the fixtures are too small to time), then fed in
 * 256-byte chunks (a busy serial port at 115200 baud delivers reads of about that size) and
 * in 64 KiB chunks (a pipe or a file).
 * Two rates are printed: per wall-clock second, and per CPU second of this process (user +
 * system). On a busy machine the second is the fairer "one core" figure; it also counts
 * V8's helper threads (GC), so it is not flattering either.
 */
import { performance } from "node:perf_hooks";
import { encodeJsonl } from "./jsonl/encode";
import { encodeMySensorsSet } from "./mysensors/encode";
import { createParser, type ProtocolName } from "./registry";
import { encodeRtl433 } from "./rtl433/encode";
import { encodeXBee } from "./xbee/encode";

export function corpus(protocol: ProtocolName, n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const t = 15 + (i % 200) / 10;
    switch (protocol) {
      case "jsonl":
        parts.push(
          encodeJsonl({ sensor: `node-${i % 50}`, temperature: t, humidity: 40 + (i % 30), ts: 1_700_000_000 + i }),
        );
        break;
      case "mysensors":
        parts.push(
          i % 3 === 2
            ? Buffer.from(`${1 + (i % 40)};255;3;0;0;${50 + (i % 50)}\n`)
            : encodeMySensorsSet(1 + (i % 40), i % 3, i % 3, i % 3 === 0 ? t.toFixed(1) : String(40 + (i % 30))),
        );
        break;
      case "xbee":
      case "xbee2": {
        const mode = protocol === "xbee" ? 1 : 2;
        const source64 = `0013a2004052${(i % 4096).toString(16).padStart(4, "0")}`;
        parts.push(
          i % 2 === 0
            ? encodeXBee(
                {
                  type: 0x92,
                  source64,
                  digital: { DIO2: 1, DIO4: (i & 4) === 4 },
                  analog: { AD1: i % 1024, AD2: 0x13 },
                },
                mode,
              )
            : encodeXBee({ type: 0x90, source64, data: `temperature=${t.toFixed(1)},humidity=${40 + (i % 30)}` }, mode),
        );
        break;
      }
      case "rtl433":
        parts.push(
          i % 2 === 0
            ? encodeRtl433({
                time: "@0.084672s",
                model: "Nexus-TH",
                id: i % 256,
                channel: 1 + (i % 3),
                battery_ok: 1,
                temperature_C: t,
                humidity: 30,
              })
            : encodeRtl433({
                time: "@0.210812s",
                model: "Fineoffset-WH24",
                id: 191,
                battery_ok: 1,
                temperature_C: t,
                humidity: 78,
                wind_dir_deg: 266,
                wind_avg_m_s: 1.12,
                wind_max_m_s: 2.24,
                rain_mm: 22.2,
                uv: 1,
                uvi: 0,
                light_lux: 0,
                mic: "CRC",
              }),
        );
        break;
    }
  }
  return Buffer.concat(parts);
}

export function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

export function runOnce(
  protocol: ProtocolName,
  input: Buffer[],
): { frames: number; readings: number; errors: number; ms: number; cpuMs: number } {
  const codec = createParser(protocol);
  let frames = 0;
  let readings = 0;
  let errors = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  for (const chunk of input) {
    for (const out of codec.push(chunk)) {
      if (out.kind === "error") errors++;
      else frames++;
      if (out.kind === "readings") readings += out.readings.length;
    }
  }
  for (const out of codec.flush()) if (out.kind === "error") errors++;
  const cpu = process.cpuUsage(cpuStart);
  return { frames, readings, errors, ms: performance.now() - start, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export interface ParserBenchOptions {
  frames: number;
  repeats?: number;
  chunkSizes?: readonly number[];
  protocols?: readonly ProtocolName[];
}

export interface ParserBenchResult {
  protocol: ProtocolName;
  chunkBytes: number;
  frames: number;
  readings: number;
  errors: number;
  framesPerSecondWall: number;
  framesPerSecondCpu: number;
  mbPerSecondWall: number;
}

/** Best of `repeats` runs after one warm-up, for each protocol and chunk size. */
export function measureParsers(o: ParserBenchOptions): ParserBenchResult[] {
  const out: ParserBenchResult[] = [];
  for (const protocol of o.protocols ?? (["jsonl", "mysensors", "xbee", "xbee2", "rtl433"] as const)) {
    const bytes = corpus(protocol, o.frames);
    for (const size of o.chunkSizes ?? [256, 65_536]) {
      const input = chunks(bytes, size);
      runOnce(protocol, input); // warm-up: let the JIT settle
      const runs = Array.from({ length: o.repeats ?? 5 }, () => runOnce(protocol, input));
      const best = runs.sort((a, b) => a.ms - b.ms)[0]!;
      const bestCpu = Math.min(...runs.map((r) => r.cpuMs));
      out.push({
        protocol,
        chunkBytes: size,
        frames: best.frames,
        readings: best.readings,
        errors: best.errors,
        framesPerSecondWall: Math.round(best.frames / (best.ms / 1000)),
        framesPerSecondCpu: Math.round(best.frames / (bestCpu / 1000)),
        mbPerSecondWall: bytes.length / 1e6 / (best.ms / 1000),
      });
    }
  }
  return out;
}
