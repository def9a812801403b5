import { z } from "zod";
import { EpochMillis } from "./reading";

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
  /** Numeric fields not stored with a known unit, `format:field:outcome` -> count (gateway/src/decode/fields.ts). */
  fields: z.record(z.string().max(200), z.number().int().nonnegative()).optional(),
  dropped: z.record(z.string().max(64), z.number().int().nonnegative()),
  forwardingPerSecond: z.number().nonnegative().nullable(),
  lastError: z.string().max(1000).nullable(),
});
export type GatewayReport = z.infer<typeof GatewayReport>;
