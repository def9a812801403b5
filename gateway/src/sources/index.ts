import type { Logger, Registry } from "@datalab/shared";
import type { UnitConfig } from "@datalab/sensors";
import type { Ingest } from "../ingest/index";
import { codecMetrics } from "../metrics/index";
import type { DeliveryLog } from "../outbox/deliveries";
import type { Source } from "./common/types";
import type { MqttConfig } from "./mqtt/config";
import { createMqttSources } from "./mqtt/create";
import type { Rtl433Config } from "./rtl433/config";
import { createRtl433Sources } from "./rtl433/create";
import type { SerialConfig } from "./serial/config";
import { createSerialSources } from "./serial/create";

export type { Source, SourceStatus } from "./common/types";
export { mqttFields, mqttTopicFormats } from "./mqtt/config";
export { rtl433Fields } from "./rtl433/config";
export { serialFields } from "./serial/config";

/** What every source reads from the gateway's config: each kind's own fields, and the units. */
export type SourcesConfig = MqttConfig &
  SerialConfig &
  Rtl433Config & {
    /** Units the operator configured per metric (DATALAB_UNITS), for readings whose source states none. */
    readonly units: UnitConfig;
  };

export interface SourceDeps {
  ingest: Ingest;
  /** The gateway's registry: each source's counters go there. */
  registry: Registry;
  logger: Logger;
  now?: () => number;
  /** The committed MQTT deliveries, to tell a resend of a message already kept. */
  deliveries?: DeliveryLog | undefined;
  /** Sources made elsewhere (a test's, the demo's), placed after MQTT and before the radios. */
  extra?: readonly ((ingest: Ingest) => Source)[];
}

/**
 * Every source the config asks for, in the order the status lists them: MQTT (and the
 * broker's drop count), the extra ones, then the radios (serial ports, rtl_433).
 */
export function createSources(config: SourcesConfig, deps: SourceDeps): Source[] {
  const now = deps.now ? { now: deps.now } : {};
  const sources = createMqttSources(config, {
    ingest: deps.ingest,
    registry: deps.registry,
    logger: deps.logger,
    units: config.units,
    deliveries: deps.deliveries,
    ...now,
  });
  for (const make of deps.extra ?? []) sources.push(make(deps.ingest));
  if (config.serialPorts.length > 0 || config.rtl433Command.length > 0) {
    const radios = { ingest: deps.ingest, metrics: codecMetrics(deps.registry), units: config.units, ...now };
    const logger = deps.logger.child({ part: "radio" });
    sources.push(...createSerialSources(config, { ...radios, logger }));
    sources.push(...createRtl433Sources(config, { ...radios, logger }));
  }
  return sources;
}
