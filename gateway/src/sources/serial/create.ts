import { join } from "node:path";
import type { Logger } from "@datalab/shared";
import type { UnitConfig } from "@datalab/sensors";
import type { Ingest } from "../../ingest/index";
import type { CodecMetrics } from "../../metrics/index";
import type { Source } from "../common/types";
import type { SerialConfig } from "./config";
import { SerialSource } from "./source";

export interface SerialDeps {
  ingest: Ingest;
  /** The radios' frame counters, on the gateway's registry. */
  metrics: CodecMetrics;
  logger: Logger;
  units: UnitConfig;
  now?: () => number;
}

/** One source per serial port the config lists. */
export function createSerialSources(config: SerialConfig, deps: SerialDeps): Source[] {
  return config.serialPorts.map(
    (spec) =>
      new SerialSource(
        {
          spec,
          xbee: config.xbeePins,
          mysensors: { storagePath: join(config.dataDir, "mysensors.db"), unitSystem: config.mysensorsUnitSystem },
          units: deps.units,
          metrics: deps.metrics,
          logger: deps.logger,
          ...(deps.now ? { now: deps.now } : {}),
        },
        deps.ingest,
      ),
  );
}
