import type { Logger } from "@datalab/shared";
import type { UnitConfig } from "@datalab/sensors";
import type { Ingest } from "../../ingest/index";
import type { CodecMetrics } from "../../metrics/index";
import type { Source } from "../common/types";
import type { Rtl433Config } from "./config";
import { Rtl433ProcessSource } from "./source";

export interface Rtl433Deps {
  ingest: Ingest;
  metrics: CodecMetrics;
  logger: Logger;
  units: UnitConfig;
  now?: () => number;
}

/** rtl_433 as a child process when DATALAB_RTL433_CMD is set; none otherwise. */
export function createRtl433Sources(config: Rtl433Config, deps: Rtl433Deps): Source[] {
  if (config.rtl433Command.length === 0) return [];
  return [
    new Rtl433ProcessSource(
      {
        command: config.rtl433Command,
        metrics: deps.metrics,
        logger: deps.logger,
        decode: { units: deps.units },
        ...(deps.now ? { now: deps.now } : {}),
      },
      deps.ingest,
    ),
  ];
}
