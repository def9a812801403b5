import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import {
  BearerToken,
  createLogger,
  natsConnectionOptions,
  QUARANTINE_SAMPLE,
  readTokenFile,
  requireTokenBeyondLoopback,
  sendJson,
  startHttp,
  subjects,
  ThrottledLog,
  type HttpServer,
  type Logger,
} from "@datalab/shared";
import { gatewayInboxPrefix, type GatewayConfig } from "./config";
import { Forwarder } from "./forward/forwarder";
import { Ingest } from "./ingest/index";
import { createGatewayMetrics, fieldCounter, type GatewayMetrics } from "./metrics/index";
import { GroupCommitter } from "./outbox/group-commit";
import { Outbox, type DropReason } from "./outbox/store";
import { rxWindowOf } from "./sources/measurement";
import { createSources, mqttTopicFormats, type Source } from "./sources/index";
import { NatsUplink } from "./uplink/nats";
import type { Uplink, UplinkState } from "./uplink/types";
import { encodeReport, type GatewayStatus } from "./status";

export type { GatewayStatus };

/**
 * The token from DATALAB_HTTP_TOKEN or the file DATALAB_HTTP_TOKEN_FILE names (read now: a bad path
 * fails at start).
 */
export function gatewayHttpToken(c: Pick<GatewayConfig, "httpToken" | "httpTokenFile">): string | undefined {
  if (c.httpToken) return c.httpToken;
  return c.httpTokenFile ? readTokenFile("DATALAB_HTTP_TOKEN_FILE", c.httpTokenFile) : undefined;
}

const UPLINK_STATES: readonly UplinkState[] = ["connecting", "connected", "reconnecting", "disconnected", "closed"];

export interface GatewayDeps {
  logger?: Logger;
  metrics?: GatewayMetrics;
  /** Use another uplink (the demo's in-process one); default NATS JetStream. */
  uplink?: Uplink;
  /** Sources made elsewhere (a test's, the demo's), besides those createSources builds from the config. */
  sources?: ((ingest: Ingest) => Source)[];
  now?: () => number;
}

/** The edge agent: sources → decode → validate → outbox → batch → uplink. */
export class Gateway {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly outbox: Outbox;
  readonly ingest: Ingest;
  readonly uplink: Uplink;
  readonly forwarder: Forwarder;
  private readonly committer: GroupCommitter;
  private readonly sources: Source[];
  private http: HttpServer | undefined;
  private lastError: string | undefined;
  private readonly dropped: Partial<Record<DropReason, number>> = {};
  /** Errors that repeat every second (a full or failing disk) and drops at the cap: one line a minute per kind. */
  private readonly throttled: ThrottledLog;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private lastReportAt = 0;
  private readonly statusSubject: string;
  private stopping: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(
    readonly config: GatewayConfig,
    deps: GatewayDeps = {},
  ) {
    const now = deps.now ?? Date.now;
    this.now = now;
    this.logger = deps.logger ?? createLogger("gateway", config.logLevel);
    this.throttled = new ThrottledLog(this.logger, 60_000, now);
    this.metrics = deps.metrics ?? createGatewayMetrics();
    this.outbox = Outbox.open(join(config.dataDir, "outbox.db"), {
      synchronous: config.synchronous,
      maxBytes: config.outboxMaxBytes,
      fullPolicy: config.outboxFullPolicy,
      wireFormat: config.wireFormat,
      logger: this.logger.child({ part: "outbox" }),
      onCorrupt: () => this.metrics.corruptDatabases.inc(),
      onDrop: (reason, n) => this.countDrop(reason, n),
      // A quarter of the smallest batch at most, so that rows never make batches coarse.
      rowMaxReadings: Math.floor(
        (config.drainMaxReadingsPerSec > 0
          ? Math.min(config.batchMaxReadings, config.drainMaxReadingsPerSec)
          : config.batchMaxReadings) / 4,
      ),
    });
    this.metrics.outboxMaxBytes.set(config.outboxMaxBytes);
    const subj = subjects(config.natsPrefix);
    this.statusSubject = subj.status(config.gatewayId);
    this.uplink =
      deps.uplink ??
      new NatsUplink({
        // An inbox of its own, so that no other gateway's user may subscribe to its PubAcks.
        connection: {
          ...natsConnectionOptions(config.natsUrl, config, `datalab-gateway-${config.gatewayId}`),
          inboxPrefix: gatewayInboxPrefix(config),
        },
        subjects: subj,
        ensureStream: config.natsEnsureStream,
        logger: this.logger.child({ part: "uplink" }),
        now,
      });
    this.forwarder = new Forwarder(
      this.outbox,
      this.uplink,
      subj.readings(config.gatewayId),
      config.gatewayId,
      {
        maxReadings: config.batchMaxReadings,
        maxBytes: config.batchMaxBytes,
        maxAgeMs: config.batchMaxAgeMs,
        maxReadingsPerSec: config.drainMaxReadingsPerSec,
        maxBytesPerSec: config.drainMaxBytesPerSec,
      },
      this.metrics,
      this.logger.child({ part: "forward" }),
      now,
    );
    const deliveries = config.mqttEnabled ? this.outbox.deliveryLog() : undefined;
    this.committer = new GroupCommitter(this.outbox, {
      ...(deliveries ? { deliveries } : {}),
      intervalMs: config.commitIntervalMs,
      minReadings: config.commitMinReadings,
      maxIntervalMs: config.commitMaxIntervalMs,
      maxReadings: config.commitMaxReadings,
      maxBytes: this.outbox.space.commitMaxBytes,
      // Only a persistent session's broker still has an unacknowledged message after a crash.
      ...(config.mqttEnabled && config.mqttPersistentSession
        ? {
            resendable: {
              maxIntervalMs: config.commitResendableMaxIntervalMs,
              maxReadings: config.commitResendableMaxReadings,
            },
          }
        : {}),
      policy: config.outboxFullPolicy,
      logger: this.logger,
      now,
      onCommitted: (n) => {
        this.metrics.readingsCommitted.inc(n);
        this.lastError = undefined;
        this.forwarder.notify();
      },
      onError: (err) => {
        this.lastError = `outbox commit failed: ${err.message}`;
        this.logThrottled(
          "commit",
          { err: err.message },
          "outbox commit failed; readings wait in memory (bounded), retrying every second",
        );
      },
      onDropped: (reason, n) => this.countDrop(reason, n),
    });
    const topicFormats = mqttTopicFormats(config);
    this.ingest = new Ingest(
      this.committer,
      this.metrics,
      { maxPayloadBytes: config.maxPayloadBytes },
      this.logger.child({ part: "ingest" }),
      now,
      rxWindowOf(config.measurementWindows, topicFormats),
    );
    this.sources = createSources(config, {
      ingest: this.ingest,
      registry: this.metrics.registry,
      logger: this.logger,
      now,
      deliveries,
      extra: deps.sources ?? [],
    });
  }

  async start(): Promise<void> {
    // Refused before anything starts: the port shows the instance id and the backlog.
    const token = gatewayHttpToken(this.config);
    requireTokenBeyondLoopback(this.config.httpHost, token, {
      host: "DATALAB_HTTP_HOST",
      token: "DATALAB_HTTP_TOKEN",
      what: "/status and /metrics",
    });
    const bearer = token ? new BearerToken(token) : undefined;
    this.updateGauges();
    this.forwarder.start();
    this.http = await startHttp({
      port: this.config.httpPort,
      host: this.config.httpHost,
      registry: this.metrics.registry,
      logger: this.logger,
      health: () => {
        const s = this.status();
        // Healthy means "doing its job": ingesting and keeping data safe. A down uplink is
        // reported, not fatal (buffering through outages is the gateway's purpose); an outbox
        // that cannot commit is fatal, and a restart is the likeliest cure.
        return { ok: !this.committer.failing, ...s };
      },
      routes: { "/status": (_req, res) => sendJson(res, 200, this.status()) },
      ...(bearer ? { authorized: (req: IncomingMessage) => bearer.matches(req) } : {}),
    });
    // Once a second: gauges, and a small step of giving free pages back to the disk.
    this.gaugeTimer = setInterval(() => this.tick(), 1_000);
    this.gaugeTimer.unref();
    await Promise.all(this.sources.map((s) => s.start()));
    this.logger.info(
      {
        gatewayId: this.config.gatewayId,
        instance: this.outbox.instance,
        http: this.http.port,
        dataDir: this.config.dataDir,
        outbox: {
          readings: this.outbox.stats().readings,
          maxBytes: this.config.outboxMaxBytes,
          policy: this.config.outboxFullPolicy,
        },
      },
      "gateway started",
    );
  }

  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  private logThrottled(key: string, fields: Record<string, unknown>, msg: string): void {
    this.throttled.error(key, fields, `${msg} (next line in a minute at the earliest)`);
  }

  private countDrop(reason: DropReason, n: number): void {
    this.metrics.dropped.inc({ reason }, n);
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
    // At the cap every commit drops a few: one line per reason per minute, with the totals.
    this.throttled.warn(
      `drop:${reason}`,
      {
        reason,
        readings: n,
        totalSinceStart: this.dropped[reason],
        policy: this.config.outboxFullPolicy,
        maxBytes: this.config.outboxMaxBytes,
      },
      "readings dropped (see docs/gateway-durability.md); next report for this reason in a minute at the earliest",
    );
  }

  private tick(): void {
    try {
      this.outbox.maintain();
    } catch (err) {
      this.logThrottled("maintain", { err: (err as Error).message }, "outbox maintenance failed; will retry");
    }
    const s = this.updateGauges();
    const every = this.config.reportIntervalMs;
    const now = this.now();
    if (every > 0 && this.uplink.sendReport && now - this.lastReportAt >= every) {
      this.lastReportAt = now;
      this.uplink.sendReport(
        this.statusSubject,
        encodeReport(s, this.committer.failing, this.outbox.quarantined(QUARANTINE_SAMPLE.entries), now),
      );
    }
  }

  private updateGauges(): GatewayStatus {
    const s = this.status();
    this.metrics.outboxReadings.set(s.outbox.readings);
    this.metrics.outboxBytes.set(s.outbox.bytes);
    this.metrics.outboxFileBytes.set(s.outbox.fileBytes);
    this.metrics.outboxOldestAge.set(s.outbox.oldestAgeSeconds ?? 0);
    this.metrics.forwardRate.set(s.forwarding.readingsPerSecond ?? 0);
    this.metrics.drainEta.set(s.forwarding.etaSeconds ?? -1);
    const state = this.uplink.status().state;
    this.metrics.uplinkConnected.set(state === "connected" ? 1 : 0);
    for (const st of UPLINK_STATES) this.metrics.uplinkState.set({ state: st }, st === state ? 1 : 0);
    return s;
  }

  status(): GatewayStatus {
    const s = this.outbox.stats();
    const rate = this.forwarder.forwardRate();
    const uplink = this.uplink.status();
    const inflight = this.outbox.inflight();
    return {
      gatewayId: this.config.gatewayId,
      instance: this.outbox.instance,
      online: true,
      uplink,
      forwarding: {
        state: this.forwarder.state(),
        readingsPerSecond: rate,
        etaSeconds: s.readings === 0 ? 0 : rate > 0 ? s.readings / rate : null,
        maxReadingsPerSec: this.config.drainMaxReadingsPerSec,
        maxBytesPerSec: this.config.drainMaxBytesPerSec,
      },
      sources: this.sources.map((x) => x.status()),
      outbox: {
        readings: s.readings,
        messages: s.messages,
        bytes: s.bytes,
        fileBytes: this.outbox.fileBytes().total,
        maxBytes: this.config.outboxMaxBytes,
        policy: this.config.outboxFullPolicy,
        oldestAgeSeconds: s.oldestReceivedAt === null ? null : Math.max(0, (this.now() - s.oldestReceivedAt) / 1000),
        inflight: inflight ? { firstSeq: inflight.firstSeq, lastSeq: inflight.lastSeq } : null,
        path: this.outbox.path,
        damage: this.outbox.damage.map((d) => ({
          kind: d.kind,
          detail: d.detail,
          lostReadings: d.lost,
          movedTo: d.movedTo,
        })),
      },
      quarantine: this.outbox.quarantineCounts(),
      fields: fieldCounter(this.metrics.registry).snapshot(),
      dropped: { ...this.dropped },
      lastError: this.lastError ?? this.forwarder.lastError ?? uplink.lastError,
    };
  }

  /** Stop intake, commit what is in memory, try a last drain before the deadline, close. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("gateway stopping");
      if (this.gaugeTimer) clearInterval(this.gaugeTimer);
      await Promise.all(
        this.sources.map((s) => s.stop().catch((err: unknown) => this.logger.warn({ err }, "source stop failed"))),
      );
      this.committer.close();
      await this.forwarder.stop();
      const deadline = this.now() + this.config.shutdownDrainMs;
      const drained = await this.forwarder.drain(deadline).catch(() => false);
      const left = this.outbox.stats().readings;
      this.logger.info(
        { drained, readingsLeftInOutbox: left, committedTotal: this.outbox.nextSequence - 1 },
        "gateway stopped",
      );
      await this.http?.close();
      await this.uplink.close();
      this.outbox.close();
    })();
    return this.stopping;
  }
}
