import { readFileSync } from "node:fs";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import {
  DiscardPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { z } from "zod";
import { field } from "./config";
import { ConfigError } from "./errors";
import type { Subjects } from "./subjects";

/** How to authenticate to NATS and secure the link. Secrets may come from files (`*_FILE`). */
export const natsSecurityFields = {
  natsUser: field("DATALAB_NATS_USER", z.string().optional(), "NATS user name"),
  natsPassword: field("DATALAB_NATS_PASSWORD", z.string().optional(), "NATS password", { secret: true }),
  natsPasswordFile: field("DATALAB_NATS_PASSWORD_FILE", z.string().optional(), "file holding the NATS password"),
  natsToken: field("DATALAB_NATS_TOKEN", z.string().optional(), "NATS auth token", { secret: true }),
  natsTokenFile: field("DATALAB_NATS_TOKEN_FILE", z.string().optional(), "file holding the NATS auth token"),
  natsCreds: field("DATALAB_NATS_CREDS", z.string().optional(), "NATS .creds file (JWT + NKey seed)"),
  natsNkeySeedFile: field("DATALAB_NATS_NKEY_SEED_FILE", z.string().optional(), "file holding an NKey seed (SU...)"),
  natsTlsCa: field("DATALAB_NATS_TLS_CA", z.string().optional(), "CA certificate file to verify the NATS server"),
  natsTlsCert: field("DATALAB_NATS_TLS_CERT", z.string().optional(), "client certificate file for NATS TLS"),
  natsTlsKey: field("DATALAB_NATS_TLS_KEY", z.string().optional(), "client key file for NATS TLS"),
} as const;

export type NatsSecurity = { [K in keyof typeof natsSecurityFields]?: string | undefined };

function readSecret(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigError([`${what}: cannot read ${path}: ${(err as Error).message}`]);
  }
}

/** Connection options from the security settings; files are read now, so a wrong path fails at start. */
export function natsConnectionOptions(
  servers: readonly string[],
  sec: NatsSecurity,
  name: string,
): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: [...servers],
    name,
    // The default gives up after 10 attempts; an edge agent must keep trying for ever.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    waitOnFirstConnect: true,
    timeout: 5_000,
    pingInterval: 20_000,
  };
  const password =
    sec.natsPassword ??
    (sec.natsPasswordFile ? readSecret(sec.natsPasswordFile, "DATALAB_NATS_PASSWORD_FILE") : undefined);
  const token =
    sec.natsToken ?? (sec.natsTokenFile ? readSecret(sec.natsTokenFile, "DATALAB_NATS_TOKEN_FILE") : undefined);
  if (sec.natsUser) {
    opts.user = sec.natsUser;
    if (password !== undefined) opts.pass = password;
  }
  if (token) opts.token = token;
  if (sec.natsCreds) {
    const creds = readSecret(sec.natsCreds, "DATALAB_NATS_CREDS");
    opts.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
  } else if (sec.natsNkeySeedFile) {
    const seed = readSecret(sec.natsNkeySeedFile, "DATALAB_NATS_NKEY_SEED_FILE");
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (sec.natsTlsCa || sec.natsTlsCert) {
    opts.tls = {
      ...(sec.natsTlsCa ? { caFile: sec.natsTlsCa } : {}),
      ...(sec.natsTlsCert ? { certFile: sec.natsTlsCert } : {}),
      ...(sec.natsTlsKey ? { keyFile: sec.natsTlsKey } : {}),
    };
  }
  return opts;
}

export async function connectNats(opts: NodeConnectionOptions): Promise<NatsConnection> {
  return connect(opts);
}

export interface StreamOptions {
  /** JetStream replicas: 1 on a single server, 3 on a cluster. */
  replicas?: number;
  /** Window in which a repeated `Nats-Msg-Id` is recognised as a duplicate. */
  duplicateWindowMs?: number;
  /** How long batches stay in the stream (the hub's sinks ack them long before). */
  maxAgeMs?: number;
  /** Size cap (none when 0 or unset); a full stream refuses new batches, which then wait in the gateways' outboxes. */
  maxBytes?: number;
}

/** The dead-letter stream's cap (1 GiB). JetStream reserves a stream's cap in max_file_store when it is created. */
export const DEAD_LETTER_MAX_BYTES = 1024 ** 3;

type StreamSpec = Partial<StreamConfig> & { name: string };

/**
 * The readings stream's configuration. Limits retention (not work-queue) so that each sink's
 * durable consumer sees every batch independently. Discard "new": a full stream refuses a
 * batch (the gateway keeps it and retries) instead of dropping older ones a sink may not have
 * written yet.
 */
export function readingsStreamConfig(s: Subjects, o: StreamOptions = {}): StreamSpec {
  return {
    name: s.stream,
    subjects: [s.allReadings],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    num_replicas: o.replicas ?? 1,
    duplicate_window: msToNanos(o.duplicateWindowMs ?? 120_000),
    max_age: msToNanos(o.maxAgeMs ?? 7 * 24 * 3600_000),
    max_bytes: o.maxBytes ? o.maxBytes : -1,
  };
}

export function deadLetterStreamConfig(s: Subjects, replicas = 1, maxBytes = 0): StreamSpec {
  return {
    name: s.deadLetterStream,
    subjects: [s.allDeadLetters],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    // A refused dead letter leaves its batch unacked in the readings stream, so nothing is lost.
    discard: DiscardPolicy.New,
    num_replicas: replicas,
    max_age: msToNanos(30 * 24 * 3600_000),
    max_bytes: maxBytes ? maxBytes : -1,
  };
}

/** Create the readings stream if it is missing; an existing one is left as it is (see reconcileStream). */
export async function ensureReadingsStream(jsm: JetStreamManager, s: Subjects, o: StreamOptions = {}): Promise<void> {
  await ensureStream(jsm, readingsStreamConfig(s, o));
}

export async function ensureDeadLetterStream(jsm: JetStreamManager, s: Subjects, replicas = 1): Promise<void> {
  await ensureStream(jsm, deadLetterStreamConfig(s, replicas));
}

async function ensureStream(jsm: JetStreamManager, cfg: StreamSpec): Promise<void> {
  if ((await streamConfig(jsm, cfg.name)) !== undefined) return;
  try {
    await jsm.streams.add(cfg);
  } catch (err) {
    // Another process may have created it between our look and our add.
    if (!/already in use|already exists/i.test((err as Error).message)) throw err;
  }
}

async function streamConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (err) {
    if ((err as Error).name !== "StreamNotFoundError" && !/stream not found/i.test((err as Error).message)) throw err;
    return undefined;
  }
}

export interface StreamReconciled {
  name: string;
  action: "created" | "updated" | "unchanged";
  /** Each setting changed, as `field: before -> after`. */
  changes: string[];
}

/**
 * Create the stream, or bring an existing one (made by a gateway, an older hub or by hand) to
 * these settings: the hub owns the stream's configuration. JetStream changes the replica count
 * of a live stream in place, copying its messages to the new peers.
 */
export async function reconcileStream(jsm: JetStreamManager, want: StreamSpec): Promise<StreamReconciled> {
  const have = await streamConfig(jsm, want.name);
  if (have === undefined) {
    try {
      await jsm.streams.add(want);
      return { name: want.name, action: "created", changes: [] };
    } catch (err) {
      if (!/already in use|already exists/i.test((err as Error).message)) throw err;
    }
    return reconcileStream(jsm, want);
  }
  const changes: string[] = [];
  // The duplicate window is left as found: it only decides how long a resend is recognised.
  for (const key of ["num_replicas", "max_bytes", "max_age", "discard"] as const) {
    if (want[key] !== undefined && have[key] !== want[key])
      changes.push(`${key}: ${String(have[key])} -> ${String(want[key])}`);
  }
  const subjectsWanted = want.subjects ?? [];
  if (subjectsWanted.some((x) => !have.subjects?.includes(x)))
    changes.push(`subjects: ${JSON.stringify(have.subjects)} -> ${JSON.stringify(subjectsWanted)}`);
  if (changes.length === 0) return { name: want.name, action: "unchanged", changes };
  const { name, retention: _r, storage: _s, duplicate_window: _d, ...update } = want;
  await jsm.streams.update(name, update);
  return { name, action: "updated", changes };
}

export function msToNanos(ms: number): number {
  return ms * 1_000_000;
}

export { jetstreamManager };
export type { NatsConnection };
