/**
 * Micro-benchmark: frames per second through parser + decode, one core, per protocol.
 * Run: pnpm exec tsx sensors/src/protocols/bench.ts [frames-per-protocol]
 * Two rates are printed: per wall-clock second, and per CPU second of this process (user +
 * system). On a busy machine the second is the fairer "one core" figure.
 */
import { measureParsers } from "./benchmark";

const FRAMES = Number(process.argv[2] ?? 200_000);
const rows = measureParsers({ frames: FRAMES }).map((r) => ({
  protocol: r.protocol,
  chunk: r.chunkBytes === 256 ? "256 B" : "64 KiB",
  frames: r.frames,
  readings: r.readings,
  errors: r.errors,
  "frames/s (wall)": r.framesPerSecondWall.toLocaleString("en-US"),
  "frames/s (cpu)": r.framesPerSecondCpu.toLocaleString("en-US"),
  "MB/s (wall)": r.mbPerSecondWall.toFixed(1),
}));
console.log(
  `parser + decode, ${FRAMES.toLocaleString("en-US")} frames per protocol, best of 5, Node ${process.version}`,
);
console.table(rows);
