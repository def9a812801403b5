import { z } from "zod";
import { EpochMillis } from "./reading";

/** How much of the quarantine a report carries: the hub shows it, the gateway's SQLite keeps it all. */
export const QUARANTINE_SAMPLE = {
  entries: 10,
  payloadChars: 1_024,
  detailChars: 300,
  maxJsonBytes: 32 * 1024,
} as const;

/** One quarantined message as a report carries it: the payload as (lossy UTF-8) text, cut to QUARANTINE_SAMPLE. */
export const QuarantineSample = z.object({
  receivedAt: EpochMillis,
  source: z.string().max(300),
  reason: z.string().max(64),
  detail: z.string().max(QUARANTINE_SAMPLE.detailChars),
  payload: z.string().max(QUARANTINE_SAMPLE.payloadChars),
  /** Size of the whole payload; more than the text holds when it was cut. */
  payloadBytes: z.number().int().nonnegative(),
});
export type QuarantineSample = z.infer<typeof QuarantineSample>;

/**
 * A gateway's health report, sent every few seconds on core NATS (`<prefix>.status.<id>`):
 * what only the gateway knows — its backlog, its uplink, its quarantine — so the hub can show
 * it beside what it sees arrive. Not stored in JetStream: only the latest one matters.
 */
export const GatewayReport = z.object({
  v: z.literal(1),
  gatewayId: z.string(),
  instance: z.string(),
  sentAt: EpochMillis,
  /** "ok", or the uplink's or the outbox's problem in a word. */
  health: z.string().max(64),
  backlog: z.object({
    readings: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    oldestAt: EpochMillis.nullable(),
  }),
  quarantine: z.record(z.string().max(64), z.number().int().nonnegative()),
  /** The newest quarantined messages, newest first, bounded so a report stays small (QUARANTINE_SAMPLE). */
  recentQuarantine: z.array(QuarantineSample).max(20).optional(),
  /** Numeric fields not stored with a known unit, `format:field:outcome` -> count (gateway/src/decode/fields.ts). */
  fields: z.record(z.string().max(200), z.number().int().nonnegative()).optional(),
  dropped: z.record(z.string().max(64), z.number().int().nonnegative()),
  forwardingPerSecond: z.number().nonnegative().nullable(),
  lastError: z.string().max(1000).nullable(),
});
export type GatewayReport = z.infer<typeof GatewayReport>;
