import { resolve } from "node:path";
import { z } from "zod";
import { type ConfiguredUnit, UnitConfig } from "@datalab/sensors";
import {
  bool,
  commonFields,
  field,
  gatewayIdField,
  httpPortField,
  intIn,
  loadConfig,
  natsSecurityFields,
  tokenSchema,
  type ConfigOf,
  type LoadOptions,
} from "@datalab/shared";
import { mqttFields, rtl433Fields, serialFields } from "./sources/index";
import { rxWindowsSchema } from "./sources/measurement";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** A size in bytes: a plain integer or a number with a unit (`512KiB`, `256MiB`, `1GB`). */
export function byteSize(min: number, max: number, def: string) {
  const expected = `expected a size from ${min} to ${max} bytes, e.g. 262144, 256KiB, 256MiB or 1GiB`;
  return z
    .union([z.number(), z.string()])
    .default(def)
    .transform((v, ctx) => {
      const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(v));
      const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
      const n = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: "custom", message: expected });
        return z.NEVER;
      }
      return n;
    });
}

/**
 * `DATALAB_UNITS` / `units`: the unit of metrics whose source states none, as
 * `metric=unit` or `sensor-pattern/metric=unit` (`*` matches any run of characters), e.g.
 * `pressure=hPa,battery=%EL,outdoor-*\/temperature=F`; in the config file also an object
 * `{"pressure": "hPa", "outdoor-*\/temperature": "F"}`. Units must be in the table of
 * docs/radios.md, so a typo is an error at start rather than a unit nobody can convert.
 */
export const unitsSchema = z
  .union([z.string(), z.record(z.string(), z.string())], {
    error: "expected metric=unit pairs, comma-separated, or an object",
  })
  .default("")
  .transform((v, ctx) => {
    const pairs: [string, string][] =
      typeof v === "string"
        ? v
            .split(",")
            .map((x) => x.trim())
            .filter(Boolean)
            .map((x) => {
              const eq = x.lastIndexOf("=");
              return eq < 0 ? [x, ""] : [x.slice(0, eq).trim(), x.slice(eq + 1).trim()];
            })
        : Object.entries(v).map(([k, u]) => [k.trim(), u.trim()]);
    const entries: ConfiguredUnit[] = [];
    const problems: string[] = [];
    for (const [key, unit] of pairs) {
      const slash = key.lastIndexOf("/");
      const metric = slash < 0 ? key : key.slice(slash + 1);
      const sensor = slash < 0 ? undefined : key.slice(0, slash);
      if (metric === "" || unit === "" || sensor === "") {
        problems.push(`"${key}${unit ? `=${unit}` : ""}": expected metric=unit or sensor-pattern/metric=unit`);
        continue;
      }
      entries.push(sensor === undefined ? { metric, unit } : { metric, sensor, unit });
    }
    problems.push(...UnitConfig.problems(entries));
    if (problems.length > 0) {
      ctx.addIssue({ code: "custom", message: problems.join("; ") });
      return z.NEVER;
    }
    return new UnitConfig(entries);
  });

export const gatewayFields = {
  ...commonFields,
  gatewayId: gatewayIdField,
  dataDir: field(
    "DATALAB_DATA_DIR",
    z
      .string()
      .min(1)
      .default(".data/gateway")
      .transform((p) => resolve(p)),
    "folder of the SQLite outbox",
  ),
  httpPort: httpPortField(9101),
  httpHost: field(
    "DATALAB_HTTP_HOST",
    z.string().min(1).default("127.0.0.1"),
    "address the status/metrics port listens on; beyond loopback (e.g. 0.0.0.0) it needs DATALAB_HTTP_TOKEN",
  ),
  httpToken: field(
    "DATALAB_HTTP_TOKEN",
    tokenSchema.optional(),
    "bearer token for /status and /metrics (unset: no auth, allowed only on a loopback DATALAB_HTTP_HOST; " +
      "/healthz never asks, and says only ok without it)",
    { secret: true },
  ),
  httpTokenFile: field(
    "DATALAB_HTTP_TOKEN_FILE",
    z.string().optional(),
    "file holding DATALAB_HTTP_TOKEN (e.g. a mounted secret)",
  ),
  ...mqttFields,
  ...natsSecurityFields,
  natsEnsureStream: field("DATALAB_NATS_ENSURE_STREAM", bool(true), "create the readings stream if missing"),
  natsInboxPrefix: field(
    "DATALAB_NATS_INBOX_PREFIX",
    z
      .string()
      .regex(
        /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/,
        "expected NATS subject tokens (letters, digits, _, -, $) separated by dots",
      )
      .optional(),
    "subject prefix of the reply inbox where JetStream's acknowledgements arrive (default: _INBOX_<gateway id>; " +
      "the gateway's NATS user may subscribe to <prefix>.> only)",
  ),
  units: field(
    "DATALAB_UNITS",
    unitsSchema,
    "units of metrics whose source states none, metric=unit or sensor-pattern/metric=unit, comma-separated (e.g. " +
      "pressure=hPa,outdoor-*/temperature=F); converted to the canonical units of docs/radios.md; without one a " +
      "unit stays unknown",
  ),
  maxPayloadBytes: field(
    "DATALAB_MAX_PAYLOAD_BYTES",
    intIn(16, 16 * 1024 * 1024, 65_536),
    "largest accepted message; larger ones are quarantined",
  ),
  synchronous: field(
    "DATALAB_SQLITE_SYNCHRONOUS",
    z.enum(["FULL", "NORMAL"], { error: "expected FULL or NORMAL" }).default("FULL"),
    "FULL: a commit survives a power cut; NORMAL: it survives a crash, but the last commits may be lost on a power cut",
  ),
  commitIntervalMs: field(
    "DATALAB_COMMIT_INTERVAL_MS",
    intIn(1, 10_000, 100),
    "group commit: commit a group this old (ms) once it holds DATALAB_COMMIT_MIN_READINGS",
  ),
  commitMinReadings: field(
    "DATALAB_COMMIT_MIN_READINGS",
    intIn(1, 100_000, 50),
    "group commit: a smaller group waits past DATALAB_COMMIT_INTERVAL_MS, up to DATALAB_COMMIT_MAX_INTERVAL_MS " +
      "(1: never waits)",
  ),
  commitMaxIntervalMs: field(
    "DATALAB_COMMIT_MAX_INTERVAL_MS",
    intIn(1, 60_000, 500),
    "group commit: commit every group by this age (ms), the loss window in time (at least DATALAB_COMMIT_INTERVAL_MS)",
  ),
  commitMaxReadings: field(
    "DATALAB_COMMIT_MAX_READINGS",
    intIn(1, 100_000, 1_000),
    "group commit: commit when this many readings wait",
  ),
  commitResendableMaxIntervalMs: field(
    "DATALAB_COMMIT_RESENDABLE_MAX_INTERVAL_MS",
    intIn(1, 60_000, 5_000),
    "group commit at a trickle, when every waiting message can be resent (MQTT QoS 1 on a persistent session, " +
      "acknowledged after its commit): commit by this age (ms); fewer, fuller commits spare the SD card",
  ),
  commitResendableMaxReadings: field(
    "DATALAB_COMMIT_RESENDABLE_MAX_READINGS",
    intIn(1, 100_000, 1_000),
    "group commit at a trickle, when every waiting message can be resent: commit when this many readings wait",
  ),
  wireFormat: field(
    "DATALAB_WIRE_FORMAT",
    z
      .enum(["1", "2"], { error: "expected 1 or 2" })
      .default("2")
      .transform((v) => (v === "2" ? 2 : 1)),
    "wire format of the batches: 2 (messages as JSON arrays, a third fewer bytes) needs a hub that reads it; " +
      "1 for an older hub (see docs/deploy.md, upgrading)",
  ),
  batchMaxReadings: field(
    "DATALAB_BATCH_MAX_READINGS",
    intIn(1, 50_000, 2_000),
    "a batch closes at this many readings",
  ),
  batchMaxBytes: field(
    "DATALAB_BATCH_MAX_BYTES",
    intIn(1_024, 8 * 1024 * 1024, 512 * 1024),
    "a batch closes at this many bytes (stay under NATS max_payload)",
  ),
  batchMaxAgeMs: field(
    "DATALAB_BATCH_MAX_AGE_MS",
    intIn(0, 600_000, 100),
    "a batch closes when its oldest reading waited this long (ms)",
  ),
  outboxMaxBytes: field(
    "DATALAB_OUTBOX_MAX_BYTES",
    byteSize(1024 * 1024, 1024 ** 4, "256MiB"),
    "cap on the outbox file on disk (SQLite database + WAL), e.g. 256MiB or 2GiB; see docs/gateway-durability.md",
  ),
  outboxFullPolicy: field(
    "DATALAB_OUTBOX_FULL_POLICY",
    z.enum(["drop_oldest", "refuse_newest"], { error: "expected drop_oldest or refuse_newest" }).default("drop_oldest"),
    "when the outbox is full: drop_oldest keeps the newest readings, refuse_newest keeps the oldest; every drop " +
      "is counted",
  ),
  drainMaxReadingsPerSec: field(
    "DATALAB_DRAIN_MAX_READINGS_PER_SEC",
    intIn(0, 10_000_000, 0),
    "cap on forwarded readings per second, for a thin uplink (0: no cap)",
  ),
  drainMaxBytesPerSec: field(
    "DATALAB_DRAIN_MAX_BYTES_PER_SEC",
    byteSize(0, 1024 ** 3, "0"),
    "cap on forwarded bytes per second, e.g. 64KiB (0: no cap)",
  ),
  reportIntervalMs: field(
    "DATALAB_REPORT_INTERVAL_MS",
    intIn(0, 3_600_000, 10_000),
    "how often the gateway reports its backlog and health to the hub over NATS (0: never)",
  ),
  shutdownDrainMs: field(
    "DATALAB_SHUTDOWN_DRAIN_MS",
    intIn(0, 600_000, 5_000),
    "on SIGTERM, try to send the outbox for this long",
  ),
  ...serialFields,
  measurementWindows: field(
    "DATALAB_MEASUREMENT_WINDOWS",
    rxWindowsSchema,
    "fold window (ms) of readings stamped on receipt, per format, e.g. rtl433=2000,mysensors=250: the same value " +
      "from the same sensor within it is one measurement at the hub (defaults: rtl433=2000, others 0 = off)",
  ),
  ...rtl433Fields,
} as const;

export type GatewayConfig = ConfigOf<typeof gatewayFields>;

export function loadGatewayConfig(opts: LoadOptions = {}): GatewayConfig {
  return loadConfig(gatewayFields, opts);
}

/**
 * Where JetStream's PubAcks reach this gateway: a prefix per gateway, which its NATS user alone may
 * subscribe under.
 */
export function gatewayInboxPrefix(c: Pick<GatewayConfig, "natsInboxPrefix" | "gatewayId">): string {
  return c.natsInboxPrefix ?? `_INBOX_${c.gatewayId}`;
}
