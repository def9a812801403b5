import { readFileSync } from "node:fs";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
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
export function natsConnectionOptions(servers: readonly string[], sec: NatsSecurity, name: string): NodeConnectionOptions {
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
  const password = sec.natsPassword ?? (sec.natsPasswordFile ? readSecret(sec.natsPasswordFile, "DATALAB_NATS_PASSWORD_FILE") : undefined);
  const token = sec.natsToken ?? (sec.natsTokenFile ? readSecret(sec.natsTokenFile, "DATALAB_NATS_TOKEN_FILE") : undefined);
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
  maxBytes?: number;
}

/**
 * Create the readings stream if it is missing. Limits retention (not work-queue) so that each
 * sink's durable consumer sees every batch independently.
 */
export async function ensureReadingsStream(jsm: JetStreamManager, s: Subjects, o: StreamOptions = {}): Promise<void> {
  const cfg: Partial<StreamConfig> & { name: string } = {
    name: s.stream,
    subjects: [s.allReadings],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: o.replicas ?? 1,
    duplicate_window: msToNanos(o.duplicateWindowMs ?? 120_000),
    max_age: msToNanos(o.maxAgeMs ?? 7 * 24 * 3600_000),
    max_bytes: o.maxBytes ?? -1,
  };
  await ensureStream(jsm, cfg);
}

export async function ensureDeadLetterStream(jsm: JetStreamManager, s: Subjects, replicas = 1): Promise<void> {
  await ensureStream(jsm, {
    name: s.deadLetterStream,
    subjects: [s.allDeadLetters],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_age: msToNanos(30 * 24 * 3600_000),
  });
}

async function ensureStream(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(cfg.name);
    return;
  } catch (err) {
    if ((err as Error).name !== "StreamNotFoundError" && !/stream not found/i.test((err as Error).message)) throw err;
  }
  try {
    await jsm.streams.add(cfg);
  } catch (err) {
    // Another process may have created it between our look and our add.
    if (!/already in use|already exists/i.test((err as Error).message)) throw err;
  }
}

export function msToNanos(ms: number): number {
  return ms * 1_000_000;
}

export { jetstreamManager };
export type { NatsConnection };
