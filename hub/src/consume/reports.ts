import type pg from "pg";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { errorMessage, GatewayReport, type Logger, type Subjects } from "@datalab/shared";
import { Counter, type Registry } from "@datalab/shared";

/**
 * Gateways' health reports (core NATS, `<prefix>.status.<id>`) into the `gateways` table:
 * backlog, oldest unsent reading, health, quarantine and drop counts. Hub processes share
 * them through a queue group. Only the newest report per gateway matters, so at most one
 * write per gateway is in flight and at most one more waits: memory is bounded by the number
 * of gateways, and a slow database never queues reports up.
 */
export class ReportIntake {
  private sub: Subscription | undefined;
  private readonly writing = new Set<string>();
  private readonly waiting = new Map<string, GatewayReport>();
  private readonly received: Counter<"outcome">;

  constructor(
    /** Without a connection (the demo's in-process mode) reports come through `take`. */
    private readonly nc: NatsConnection | undefined,
    private readonly pool: pg.Pool,
    private readonly subj: Subjects,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.received = new Counter({
      name: "datalab_hub_gateway_reports_total",
      help: "Gateway health reports received, by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    });
  }

  start(): void {
    if (!this.nc) return;
    this.sub = this.nc.subscribe(this.subj.allStatus, {
      queue: "datalab-hub-reports",
      callback: (err, msg) => {
        if (err) return;
        this.take(msg.subject, msg.data);
      },
    });
  }

  /** One report as received on `subject` (a gateway's status subject). */
  take(subject: string, data: Uint8Array): void {
    const gatewayId = this.subj.gatewayOf(subject);
    let report: GatewayReport;
    try {
      if (!gatewayId || data.byteLength > 64 * 1024) throw new Error("bad subject or oversized report");
      report = GatewayReport.parse(JSON.parse(Buffer.from(data).toString("utf8")));
    } catch (err) {
      this.received.inc({ outcome: "invalid" });
      this.logger.debug({ subject, err: errorMessage(err) }, "gateway report refused");
      return;
    }
    // As for batches, the subject says who sent it; a report claiming another gateway is refused.
    if (report.gatewayId !== gatewayId) {
      this.received.inc({ outcome: "gateway_mismatch" });
      return;
    }
    if (this.writing.has(gatewayId)) {
      this.waiting.set(gatewayId, report);
      return;
    }
    void this.write(gatewayId, report);
  }

  private async write(gatewayId: string, report: GatewayReport): Promise<void> {
    this.writing.add(gatewayId);
    try {
      // Only gateways that have delivered a batch have a row; a report before the first batch
      // is dropped and the next one fills the columns in.
      const r = await this.pool.query(
        `UPDATE gateways SET backlog_readings = $2, backlog_bytes = $3,
                oldest_backlog_at = CASE WHEN $4::float8 IS NULL THEN NULL ELSE to_timestamp($4::float8 / 1000.0) END,
                health = $5, health_detail = $6::jsonb, reported_at = now()
          WHERE gateway_id = $1`,
        [
          gatewayId,
          report.backlog.readings,
          report.backlog.bytes,
          report.backlog.oldestAt,
          report.health,
          JSON.stringify({
            instance: report.instance,
            sentAt: report.sentAt,
            quarantine: report.quarantine,
            recentQuarantine: report.recentQuarantine ?? null,
            dropped: report.dropped,
            forwardingPerSecond: report.forwardingPerSecond,
            lastError: report.lastError,
          }),
        ],
      );
      this.received.inc({ outcome: r.rowCount ? "stored" : "no_batch_yet" });
    } catch (err) {
      this.received.inc({ outcome: "write_failed" });
      this.logger.warn({ gatewayId, err: errorMessage(err) }, "gateway report not stored");
    } finally {
      this.writing.delete(gatewayId);
      const next = this.waiting.get(gatewayId);
      if (next) {
        this.waiting.delete(gatewayId);
        void this.write(gatewayId, next);
      }
    }
  }

  stop(): void {
    this.sub?.unsubscribe();
  }
}
