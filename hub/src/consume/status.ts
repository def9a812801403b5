import type pg from "pg";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage, type Subjects } from "@datalab/shared";
import { durableName } from "./durable";

/** How far each sink is behind, what was given up on, and when Postgres last took a batch. */
export interface HubStatusReport {
  stream: { name: string; batches: number; bytes: number; lastSeq: number } | { name: string; error: string };
  consumers: SinkLag[];
  deadLetters: { total: number; bySink: Record<string, number> };
  postgres: PostgresStatus | undefined;
}

export interface SinkLag {
  sink: string;
  durable: string;
  exists: boolean;
  /** Batches not yet delivered to any hub process. */
  pending: number;
  /** Delivered, not yet acked (being written, or waiting for a redelivery). */
  ackPending: number;
  /** pending + ackPending: batches this sink still has to write. */
  lag: number;
  redelivered: number;
}

export interface PostgresStatus {
  reachable: boolean;
  error?: string;
  /** The hub's last commit of a batch (max gateways.last_batch_at). */
  lastWriteAt: string | null;
  /** The planner's estimate of the readings table's row count (count(*) would scan it). */
  readingsEstimate: number | null;
  gateways: {
    gatewayId: string;
    lastBatchAt: string;
    lastInstance: string;
    lastSeq: number;
    lastBatchReadings: number;
  }[];
}

/**
 * Gather the status from the servers themselves (JetStream consumer info, the dead-letter
 * stream, Postgres): it works without a running hub and counts every hub process at once.
 */
export async function hubStatus(
  nc: NatsConnection,
  subj: Subjects,
  configured: readonly string[],
  pool: pg.Pool | undefined,
): Promise<HubStatusReport> {
  const jsm = await jetstreamManager(nc);
  // The configured sinks, plus any other sink durable on the stream (an operator's shell
  // may lack DATALAB_MONGO_URL while the hubs have it).
  const sinks = [...configured];
  try {
    for (const ci of await jsm.consumers.list(subj.stream).next()) {
      const m = /^(.+)-sink$/.exec(ci.name);
      if (m && !sinks.includes(m[1]!)) sinks.push(m[1]!);
    }
  } catch {
    // no stream yet: reported below
  }
  let stream: HubStatusReport["stream"];
  try {
    const si = await jsm.streams.info(subj.stream);
    stream = { name: subj.stream, batches: si.state.messages, bytes: si.state.bytes, lastSeq: si.state.last_seq };
  } catch (err) {
    stream = { name: subj.stream, error: errorMessage(err) };
  }
  const consumers: SinkLag[] = [];
  for (const sink of sinks) {
    const durable = durableName(sink);
    try {
      const ci = await jsm.consumers.info(subj.stream, durable);
      consumers.push({
        sink,
        durable,
        exists: true,
        pending: ci.num_pending,
        ackPending: ci.num_ack_pending,
        lag: ci.num_pending + ci.num_ack_pending,
        redelivered: ci.num_redelivered,
      });
    } catch {
      consumers.push({ sink, durable, exists: false, pending: 0, ackPending: 0, lag: 0, redelivered: 0 });
    }
  }
  const deadLetters = { total: 0, bySink: {} as Record<string, number> };
  try {
    const di = await jsm.streams.info(subj.deadLetterStream, { subjects_filter: subj.allDeadLetters });
    for (const [subject, n] of Object.entries(di.state.subjects ?? {})) {
      const sink = subject.slice(subject.lastIndexOf(".") + 1);
      deadLetters.bySink[sink] = (deadLetters.bySink[sink] ?? 0) + n;
      deadLetters.total += n;
    }
  } catch {
    // no dead-letter stream yet: nothing was ever dead-lettered
  }
  return { stream, consumers, deadLetters, postgres: pool ? await postgresStatus(pool) : undefined };
}

async function postgresStatus(pool: pg.Pool): Promise<PostgresStatus> {
  try {
    const last = await pool.query<{ at: Date | null }>("SELECT max(last_batch_at) AS at FROM gateways");
    const est = await pool.query<{ n: string | null }>(
      "SELECT reltuples::bigint AS n FROM pg_class WHERE oid = to_regclass('readings')",
    );
    const gws = await pool.query<{
      gateway_id: string;
      last_batch_at: Date;
      last_instance: string;
      last_batch_seq: string;
      last_batch_readings: number;
    }>(
      "SELECT gateway_id, last_batch_at, last_instance, last_batch_seq, last_batch_readings" +
        " FROM gateways ORDER BY last_batch_at DESC LIMIT 20",
    );
    const n = est.rows[0]?.n;
    return {
      reachable: true,
      lastWriteAt: last.rows[0]?.at?.toISOString() ?? null,
      // -1 means "never analysed" on Postgres 14+.
      readingsEstimate: n === null || n === undefined || Number(n) < 0 ? null : Number(n),
      gateways: gws.rows.map((r) => ({
        gatewayId: r.gateway_id,
        lastBatchAt: r.last_batch_at.toISOString(),
        lastInstance: r.last_instance,
        lastSeq: Number(r.last_batch_seq),
        lastBatchReadings: r.last_batch_readings,
      })),
    };
  } catch (err) {
    return { reachable: false, error: errorMessage(err), lastWriteAt: null, readingsEstimate: null, gateways: [] };
  }
}
