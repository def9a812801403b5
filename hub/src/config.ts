import {
  commonFields,
  ConfigError,
  field,
  httpPortField,
  intIn,
  loadConfig,
  natsSecurityFields,
  type ConfigOf,
  type LoadOptions,
} from "@datalab/shared";
import { z } from "zod";
import { dataLabFields } from "./api/config";
import { sinkFields } from "./sinks/config";

/** The hub's one-pass config: each part's fields (sinks, consumers, HTTP, DataLab) in one schema. */
export const hubFields = {
  ...commonFields,
  ...sinkFields,
  sinkConcurrency: field(
    "DATALAB_SINK_CONCURRENCY",
    intIn(1, 64, 4),
    "batches each sink consumer writes at once in one hub process",
  ),
  httpPort: httpPortField(8080),
  httpHost: field(
    "DATALAB_HTTP_HOST",
    z.string().min(1).default("127.0.0.1"),
    "address the HTTP server (API, live stream, dashboard, /metrics) listens on; " +
      "beyond loopback (e.g. 0.0.0.0) it needs DATALAB_API_TOKEN",
  ),
  ...natsSecurityFields,
  streamReplicas: field(
    "DATALAB_STREAM_REPLICAS",
    intIn(1, 5, 1),
    "JetStream replicas of the readings and dead-letter streams, set at every start (3 on a cluster)",
  ),
  streamMaxBytes: field(
    "DATALAB_STREAM_MAX_BYTES",
    intIn(0, 2 ** 50, 0),
    "size cap of the readings stream in bytes, set at every start " +
      "(0: none, the server's max_file_store bounds it; the deploy files set 8 GiB); " +
      "when full it refuses new batches, which wait in the gateways' outboxes. " +
      "JetStream reserves the cap on every server: keep it plus 1 GiB of dead letters under max_file_store",
  ),
  streamMaxAgeMs: field(
    "DATALAB_STREAM_MAX_AGE_MS",
    intIn(60_000, 365 * 24 * 3600_000, 7 * 24 * 3600_000),
    "how long the readings stream keeps batches, set at every start",
  ),
  maxAckPending: field(
    "DATALAB_MAX_ACK_PENDING",
    intIn(1, 10_000, 64),
    "batches delivered but not yet acked per sink consumer, over all hub processes " +
      "(each holds up to 2 × DATALAB_SINK_CONCURRENCY)",
  ),
  ackWaitMs: field("DATALAB_ACK_WAIT_MS", intIn(1_000, 600_000, 30_000), "JetStream ack wait (ms)"),
  maxDeliver: field(
    "DATALAB_MAX_DELIVER",
    intIn(1, 1_000, 5),
    "refusals by a healthy sink before a batch is dead-lettered " +
      "(outages never count; undecodable batches go at once)",
  ),
  batchMaxBytes: field(
    "DATALAB_HUB_BATCH_MAX_BYTES",
    intIn(1_024, 64 * 1024 * 1024, 1024 * 1024),
    "largest batch accepted, checked before decoding",
  ),
  batchMaxMessages: field(
    "DATALAB_HUB_BATCH_MAX_MESSAGES",
    intIn(1, 1_000_000, 10_000),
    "most messages in one batch, checked before validating",
  ),
  // The DataLab's: API token, limits, live stream.
  ...dataLabFields,
} as const;

export type HubConfig = ConfigOf<typeof hubFields>;

export function loadHubConfig(opts: LoadOptions = {}): HubConfig {
  return loadConfig(hubFields, opts);
}

/** The mark the shipped manifests put in every secret an operator must replace. */
export const PLACEHOLDER = "CHANGE-ME";

/**
 * Refuse to start with a secret still holding a shipped placeholder: a placeholder that works
 * is a password everyone who read the manifests knows. Each offending variable is named.
 */
export function refusePlaceholders(secrets: Record<string, string | undefined>): void {
  const problems = Object.entries(secrets)
    .filter(([, v]) => v?.includes(PLACEHOLDER))
    .map(
      ([k]) =>
        `${k}: still holds the placeholder ${PLACEHOLDER}; ` +
        "replace it with a secret of your own (e.g. openssl rand -hex 24)",
    );
  if (problems.length > 0) throw new ConfigError(problems);
}
