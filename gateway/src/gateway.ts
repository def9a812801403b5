import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  createLogger,
  natsConnectionOptions,
  startHttp,
  subjects,
  type HttpServer,
  type Logger,
} from "@datalab/shared";
import type { GatewayConfig } from "./config";
import { decodeJsonPayload } from "./decode/index";
import { Forwarder } from "./forward";
import { Ingest } from "./ingest";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics";
import { GroupCommitter } from "./outbox/group-commit";
import { Outbox } from "./outbox/store";
import { MqttSource, type MqttRoute } from "./sources/mqtt";
import type { Source } from "./sources/types";
import { NatsUplink } from "./uplink/nats";
import type { Uplink, UplinkStatus } from "./uplink/types";
import { rtl433Decoder } from "./decode/rtl433";

export interface GatewayStatus {
  gatewayId: string;
  instance: string;
  uplink: UplinkStatus;
  sources: ReturnType<Source["status"]>[];
  outbox: { readings: number; messages: number; bytes: number; oldestAgeSeconds: number | null };
  forwarding: { readingsPerSecond: number; etaSeconds: number | null };
  quarantine: Record<string, number>;
  lastError: string | undefined;
}

export interface GatewayDeps {
  logger?: Logger;
  metrics?: GatewayMetrics;
  /** Use another uplink (the demo's in-process one); default NATS JetStream. */
  uplink?: Uplink;
  /** Extra sources (serial radios, rtl_433); the MQTT source is added from the config. */
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
  private readonly sources: Source[] = [];
  private http: HttpServer | undefined;
  private lastError: string | undefined;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly config: GatewayConfig,
    deps: GatewayDeps = {},
  ) {
    const now = deps.now ?? Date.now;
    this.logger = deps.logger ?? createLogger("gateway", config.logLevel);
    this.metrics = deps.metrics ?? createGatewayMetrics();
    this.outbox = Outbox.open(join(config.dataDir, "outbox.db"), {
      synchronous: config.synchronous,
      logger: this.logger,
      onCorrupt: () => this.metrics.corruptDatabases.inc(),
    });
    const subj = subjects(config.natsPrefix);
    this.uplink =
      deps.uplink ??
      new NatsUplink({
        connection: natsConnectionOptions(config.natsUrl, config, `datalab-gateway-${config.gatewayId}`),
        subjects: subj,
        ensureStream: config.natsEnsureStream,
        logger: this.logger.child({ part: "uplink" }),
      });
    this.forwarder = new Forwarder(
      this.outbox,
      this.uplink,
      subj.readings(config.gatewayId),
      config.gatewayId,
      { maxReadings: config.batchMaxReadings, maxBytes: config.batchMaxBytes, maxAgeMs: config.batchMaxAgeMs },
      this.metrics,
      this.logger.child({ part: "forward" }),
      now,
    );
    this.committer = new GroupCommitter(this.outbox, {
      intervalMs: config.commitIntervalMs,
      maxReadings: config.commitMaxReadings,
      logger: this.logger,
      onCommitted: (n) => {
        this.metrics.readingsCommitted.inc(n);
        this.updateGauges();
        this.forwarder.notify();
      },
      onError: (err) => {
        this.lastError = `outbox commit failed: ${err.message}`;
        this.logger.error({ err }, "outbox commit failed; will retry");
      },
    });
    this.ingest = new Ingest(this.committer, this.metrics, { maxPayloadBytes: config.maxPayloadBytes }, this.logger.child({ part: "ingest" }), now);
    if (config.mqttEnabled) {
      const routes: MqttRoute[] = [
        ...config.mqttRtl433Topics.map((filter) => ({ filter, decoder: rtl433Decoder })),
        ...config.mqttTopics.map((filter) => ({ filter, decoder: decodeJsonPayload })),
      ];
      this.sources.push(
        new MqttSource(
          {
            url: config.mqttUrl,
            routes,
            clientId: config.mqttClientId ?? `datalab-gateway-${config.gatewayId}`,
            persistentSession: config.mqttPersistentSession,
            sessionExpirySeconds: config.mqttSessionExpiry,
            qos: config.mqttPersistentSession ? 1 : 0,
            username: config.mqttUsername,
            password: config.mqttPassword ?? (config.mqttPasswordFile ? readFileSync(config.mqttPasswordFile, "utf8").trim() : undefined),
            caFile: config.mqttTlsCa,
            certFile: config.mqttTlsCert,
            keyFile: config.mqttTlsKey,
            logger: this.logger.child({ part: "mqtt" }),
          },
          this.ingest,
        ),
      );
    }
    for (const make of deps.sources ?? []) this.sources.push(make(this.ingest));
  }

  async start(): Promise<void> {
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
        // reported, not fatal — buffering through outages is the gateway's purpose.
        return { ok: true, ...s };
      },
      routes: { "/status": (_req, res) => void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.status())) },
    });
    this.gaugeTimer = setInterval(() => this.updateGauges(), 1_000);
    this.gaugeTimer.unref();
    await Promise.all(this.sources.map((s) => s.start()));
    this.logger.info(
      { gatewayId: this.config.gatewayId, instance: this.outbox.instance, http: this.http.port, dataDir: this.config.dataDir },
      "gateway started",
    );
  }

  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  private updateGauges(): void {
    const s = this.outbox.stats();
    this.metrics.outboxReadings.set(s.readings);
    this.metrics.outboxBytes.set(s.bytes);
    this.metrics.outboxOldestAge.set(s.oldestReceivedAt === null ? 0 : Math.max(0, (Date.now() - s.oldestReceivedAt) / 1000));
    this.metrics.uplinkConnected.set(this.uplink.status().state === "connected" ? 1 : 0);
  }

  status(): GatewayStatus {
    const s = this.outbox.stats();
    const rate = this.forwarder.forwardRate();
    return {
      gatewayId: this.config.gatewayId,
      instance: this.outbox.instance,
      uplink: this.uplink.status(),
      sources: this.sources.map((x) => x.status()),
      outbox: {
        readings: s.readings,
        messages: s.messages,
        bytes: s.bytes,
        oldestAgeSeconds: s.oldestReceivedAt === null ? null : Math.max(0, (Date.now() - s.oldestReceivedAt) / 1000),
      },
      forwarding: { readingsPerSecond: rate, etaSeconds: s.readings === 0 ? 0 : rate > 0 ? s.readings / rate : null },
      quarantine: this.outbox.quarantineCounts(),
      lastError: this.lastError ?? this.forwarder.lastError ?? this.uplink.status().lastError,
    };
  }

  /** Stop intake, commit what is in memory, try a last drain before the deadline, close. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("gateway stopping");
      await Promise.all(this.sources.map((s) => s.stop().catch((err: unknown) => this.logger.warn({ err }, "source stop failed"))));
      this.logger.debug("sources stopped");
      this.committer.close();
      await this.forwarder.stop();
      this.logger.debug("forwarder stopped");
      const drained = await this.forwarder.drain(Date.now() + this.config.shutdownDrainMs).catch(() => false);
      this.updateGauges();
      const left = this.outbox.stats().readings;
      this.logger.info({ drained, readingsLeftInOutbox: left }, "gateway stopped");
      if (this.gaugeTimer) clearInterval(this.gaugeTimer);
      await this.http?.close();
      await this.uplink.close();
      this.outbox.close();
    })();
    return this.stopping;
  }
}
