import { measureParsers } from "@datalab/sensors/protocols/benchmark";
import type { BenchContext, Figure } from "./common";

/** Parser + decode per protocol, frames/s on one core (CPU time of this process). */
export async function parsersStage(ctx: BenchContext): Promise<Figure[]> {
  const results = measureParsers({
    frames: ctx.quick ? 20_000 : 200_000,
    repeats: ctx.quick ? 3 : 5,
    chunkSizes: [256],
  });
  return results.map((r) => {
    ctx.log(`parsers: ${r.protocol} ${r.framesPerSecondCpu} frames/s (cpu), ${r.framesPerSecondWall} (wall)`);
    return {
      stage: "Parsers, one core",
      figure: `${r.protocol} frames/s`,
      value: r.framesPerSecondCpu,
      unit: "frames/s",
      target: "≥ 100,000",
      met: r.framesPerSecondCpu >= 100_000,
      note: `256-byte chunks; wall-clock ${r.framesPerSecondWall.toLocaleString("en-US")}/s`,
    };
  });
}
