import { resolve } from "node:path";
import { z } from "zod";
import { field, intIn, loadConfig, type ConfigOf, type LoadOptions } from "@datalab/shared";

/**
 * The demo's own settings. The hub and the gateway read theirs (DATALAB_PG_URL, DATALAB_NATS_URL,
 * DATALAB_MQTT_URL, DATALAB_HTTP_PORT for the hub, ...) from the same environment.
 */
export const demoFields = {
  demoDir: field(
    "DATALAB_DEMO_DIR",
    z
      .string()
      .min(1)
      .default(".data/demo")
      .transform((p) => resolve(p)),
    "folder kept between runs: the gateway's outbox (gateway/), the embedded Postgres (pglite/), dead letters",
  ),
  embedded: field(
    "DATALAB_DEMO_EMBEDDED",
    z.enum(["auto", "always", "never"], { error: "expected auto, always or never" }).default("auto"),
    "auto: an embedded stand-in for each server that does not answer; always: stand-ins only; never: real servers only",
  ),
  probeTimeoutMs: field(
    "DATALAB_DEMO_PROBE_MS",
    intIn(100, 30_000, 1_500),
    "how long to wait for a server to answer before using its stand-in (ms)",
  ),
  gatewayHttpPort: field(
    "DATALAB_GATEWAY_HTTP_PORT",
    intIn(0, 65535, 9101),
    "the gateway's HTTP port (/status, /healthz, /metrics; 0: any free port)",
  ),
  sensors: field(
    "DATALAB_DEMO_SENSORS",
    intIn(0, 10_000, 10),
    "simulated sensors (0: none; publish your own to the broker)",
  ),
  rate: field(
    "DATALAB_DEMO_RATE",
    z.coerce.number({ error: "expected a number" }).positive("expected a number above 0").max(100_000).default(5),
    "simulated samples per second, all sensors together",
  ),
} as const;

export type DemoConfig = ConfigOf<typeof demoFields>;

export function loadDemoConfig(opts: LoadOptions = {}): DemoConfig {
  // The demo's variables only: a DATALAB_CONFIG file holds the hub's or gateway's keys.
  return loadConfig(demoFields, {
    ...opts,
    file: undefined,
    env: { ...(opts.env ?? process.env), DATALAB_CONFIG: undefined },
  });
}
