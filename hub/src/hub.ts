import type { IncomingMessage } from "node:http";
import type pg from "pg";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BearerToken,
  connectNats,
  createLogger,
  DEAD_LETTER_MAX_BYTES,
  deadLetterStreamConfig,
  jetstreamManager,
  natsConnectionOptions,
  readingsStreamConfig,
  reconcileStream,
  requireTokenBeyondLoopback,
  startHttp,
  subjects,
  type HttpServer,
  type Logger,
  type Route,
} from "@datalab/shared";
import { resolveApiToken } from "./api/config";
import { refusePlaceholders, type HubConfig } from "./config";
import { SinkConsumer, type ConsumerStatus } from "./consume/consumer";
import { DirectIntake, type DirectIntakeOptions } from "./consume/direct";
import { createHubMetrics, type HubMetrics } from "./consume/metrics";
import { ReportIntake } from "./consume/reports";
import { createDataLab, type DataLab } from "./datalab";
import { createMongoSink, createPgPool, createPostgresSink } from "./sinks/index";
import type { Sink } from "./sinks/types";

export interface HubDeps {
  logger?: Logger;
  metrics?: HubMetrics;
  /** Extra sinks, each with its own durable consumer (named after the sink). */
  sinks?: Sink[];
  /** More HTTP routes (query API, dashboard). */
  routes?: Record<string, Route>;
  /** A pool to use instead of one built from DATALAB_PG_URL (the desktop demo's embedded Postgres). */
  pgPool?: pg.Pool;
  /** No NATS: batches arrive through `hub.direct` (the desktop demo's in-process uplink). */
  inProcess?: Pick<DirectIntakeOptions, "deadLetter">;
}

export interface HubStatus {
  nats: "connected" | "disconnected" | "in-process";
  consumers: ConsumerStatus[];
}

/** The cloud side: JetStream consumers, one per sink, writing idempotently. */
export class Hub {
  readonly logger: Logger;
  readonly metrics: HubMetrics;
  readonly subjects;
  pgPool: pg.Pool | undefined;
  private nc: NatsConnection | undefined;
  /** From the connection's status events: a client reconnecting is not closed, yet NATS is down. */
  private natsUp = false;
  private reports: ReportIntake | undefined;
  /** Set in in-process mode (deps.inProcess) instead of the NATS consumers. */
  direct: DirectIntake | undefined;
  private readonly sinks: Sink[] = [];
  private readonly consumers: SinkConsumer[] = [];
  private http: HttpServer | undefined;
  /** Query API, live stream, dashboard (with Postgres only). */
  private datalab: DataLab | undefined;

  constructor(
    readonly config: HubConfig,
    private readonly deps: HubDeps = {},
  ) {
    this.logger = deps.logger ?? createLogger("hub", config.logLevel);
    this.metrics = deps.metrics ?? createHubMetrics();
    this.subjects = subjects(config.natsPrefix);
  }

  async start(): Promise<void> {
    const c = this.config;
    // Checked before anything connects: an open port beyond loopback is refused at start.
    const token = resolveApiToken(c);
    refusePlaceholders({
      DATALAB_API_TOKEN: token,
      DATALAB_NATS_PASSWORD: c.natsPassword,
      DATALAB_NATS_TOKEN: c.natsToken,
      DATALAB_PG_URL: c.pgEnabled ? c.pgUrl : undefined,
      DATALAB_MONGO_URL: c.mongoUrl,
    });
    requireTokenBeyondLoopback(c.httpHost, token, {
      host: "DATALAB_HTTP_HOST",
      token: "DATALAB_API_TOKEN",
      what: "the API, live stream, dashboard and /metrics",
    });
    const bearer = token ? new BearerToken(token) : undefined;
    // The DataLab (API, live stream, dashboard) on the HTTP port; it reads what Postgres holds.
    this.datalab = c.pgEnabled
      ? createDataLab(c, this.metrics.registry, this.logger.child({ part: "datalab" }), this.deps.pgPool, token)
      : undefined;
    if (c.pgEnabled) {
      this.pgPool = this.deps.pgPool ?? createPgPool(c, this.logger);
      const postgres = await createPostgresSink(this.pgPool, this.logger, {
        onFolded: (gateway, n) => this.metrics.folded.inc({ gateway }, n),
      });
      // The live feed hears each batch Postgres commits.
      this.sinks.push(this.datalab ? this.datalab.announcing(postgres) : postgres);
    }
    const mongo = await createMongoSink(c, this.logger);
    if (mongo) this.sinks.push(mongo);
    this.sinks.push(...(this.deps.sinks ?? []));
    if (this.deps.inProcess) {
      const limits = { maxBytes: c.batchMaxBytes, maxMessages: c.batchMaxMessages };
      this.direct = new DirectIntake(
        this.sinks,
        this.subjects,
        { limits, maxDeliver: c.maxDeliver, ...this.deps.inProcess },
        this.metrics,
        this.logger.child({ part: "direct" }),
      );
      if (this.pgPool)
        this.reports = new ReportIntake(
          undefined,
          this.pgPool,
          this.subjects,
          this.metrics.registry,
          this.logger.child({ part: "reports" }),
        );
    } else {
      this.nc = await connectNats(natsConnectionOptions(c.natsUrl, c, "datalab-hub"));
      this.natsUp = true;
      void this.watchNats(this.nc);
      this.datalab?.fanOut(this.nc, this.subjects);
      const jsm = await jetstreamManager(this.nc);
      // The hub owns the streams' settings: a stream a gateway created first (one replica) is corrected here.
      for (const want of [
        readingsStreamConfig(this.subjects, {
          replicas: c.streamReplicas,
          maxBytes: c.streamMaxBytes,
          maxAgeMs: c.streamMaxAgeMs,
        }),
        deadLetterStreamConfig(this.subjects, c.streamReplicas, c.streamMaxBytes ? DEAD_LETTER_MAX_BYTES : 0),
      ]) {
        const r = await reconcileStream(jsm, want);
        this.logger.info(
          { stream: r.name, replicas: want.num_replicas, maxBytes: want.max_bytes, changes: r.changes },
          `stream ${r.action}`,
        );
      }
      for (const sink of this.sinks) {
        const consumer = new SinkConsumer(
          this.nc,
          sink,
          this.subjects,
          {
            maxAckPending: c.maxAckPending,
            ackWaitMs: c.ackWaitMs,
            maxDeliver: c.maxDeliver,
            concurrency: c.sinkConcurrency,
            limits: { maxBytes: c.batchMaxBytes, maxMessages: c.batchMaxMessages },
          },
          this.metrics,
          this.logger.child({ sink: sink.name }),
        );
        await consumer.ensure();
        consumer.start();
        this.consumers.push(consumer);
      }
      if (this.pgPool) {
        this.reports = new ReportIntake(
          this.nc,
          this.pgPool,
          this.subjects,
          this.metrics.registry,
          this.logger.child({ part: "reports" }),
        );
        this.reports.start();
      }
    }
    this.http = await startHttp({
      port: c.httpPort,
      host: c.httpHost,
      registry: this.metrics.registry,
      logger: this.logger,
      health: () => {
        const s = this.status();
        return { ok: s.nats !== "disconnected", ...s };
      },
      routes: { ...this.datalab?.routes, ...this.deps.routes },
      // Without the DataLab (Postgres off) nothing else guards /metrics: the shared server does.
      ...(!this.datalab && bearer ? { authorized: (req: IncomingMessage) => bearer.matches(req) } : {}),
    });
    this.logger.info(
      { http: this.http.port, sinks: this.sinks.map((s) => s.name), stream: this.subjects.stream },
      "hub started",
    );
  }

  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  /** In-process mode: a gateway's health report handed over directly (no NATS). */
  acceptReport(subject: string, data: Uint8Array): void {
    this.reports?.take(subject, data);
  }

  get nats(): NatsConnection | undefined {
    return this.nc;
  }

  /** The sinks this hub writes to (for the query API: e.g. the MongoDB sink's client). */
  sink(name: string): Sink | undefined {
    return this.sinks.find((s) => s.name === name);
  }

  status(): HubStatus {
    return {
      nats: this.direct
        ? "in-process"
        : this.nc && this.natsUp && !this.nc.isClosed() && !this.nc.isDraining()
          ? "connected"
          : "disconnected",
      consumers: this.consumers.map((x) => x.status()),
    };
  }

  private async watchNats(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnecting") {
        if (this.natsUp) this.logger.warn("NATS connection lost; reconnecting (/healthz answers 503 meanwhile)");
        this.natsUp = false;
      } else if (s.type === "reconnect") {
        this.natsUp = true;
        this.logger.info("NATS connection restored");
      }
    }
  }

  /** Stop pulling, let in-flight writes commit and ack, then close connections. */
  async stop(): Promise<void> {
    this.reports?.stop();
    await Promise.all(this.consumers.map((x) => x.stop()));
    await this.http?.close();
    await this.datalab?.close();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
    for (const s of this.sinks) await s.close().catch(() => undefined);
    this.logger.info("hub stopped");
  }
}
