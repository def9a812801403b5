import { join } from "node:path";
import type { Logger, Registry } from "@datalab/shared";
import type { UnitConfig, XBeeCodecOptions } from "@datalab/sensors";
import { codecMetrics } from "../decode/codec";
import type { Ingest } from "../ingest";
import { Rtl433ProcessSource } from "./rtl433";
import type { SerialPortSpec } from "./serial-config";
import { SerialSource } from "./serial";
import type { Source } from "./types";

/** The part of the gateway's config the radios read (gateway/src/config.ts). */
export interface RadioConfig {
  readonly dataDir: string;
  readonly serialPorts: readonly SerialPortSpec[];
  readonly xbeePins: XBeeCodecOptions;
  readonly mysensorsUnitSystem: "M" | "I";
  readonly rtl433Command: readonly string[];
  /** Units the operator configured per metric (DATALAB_UNITS). */
  readonly units: UnitConfig;
}

/**
 * The radio sources the config asks for: one per serial port, plus rtl_433 as a child
 * process when a command is set. Returned as factories for the Gateway, which hands them its
 * ingest. Their frame counters go on the gateway's registry.
 */
export function radioSources(config: RadioConfig, logger: Logger, registry: Registry): ((ingest: Ingest) => Source)[] {
  const factories: ((ingest: Ingest) => Source)[] = [];
  if (config.serialPorts.length === 0 && config.rtl433Command.length === 0) return factories;
  const metrics = codecMetrics(registry);
  const log = logger.child({ part: "radio" });
  for (const spec of config.serialPorts) {
    factories.push(
      (ingest) =>
        new SerialSource(
          {
            spec,
            xbee: config.xbeePins,
            mysensors: { storagePath: join(config.dataDir, "mysensors.db"), unitSystem: config.mysensorsUnitSystem },
            units: config.units,
            metrics,
            logger: log,
          },
          ingest,
        ),
    );
  }
  if (config.rtl433Command.length > 0) {
    factories.push(
      (ingest) =>
        new Rtl433ProcessSource(
          { command: config.rtl433Command, metrics, logger: log, decode: { units: config.units } },
          ingest,
        ),
    );
  }
  return factories;
}
