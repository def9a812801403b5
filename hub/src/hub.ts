import pg from "pg";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  connectNats,
  createLogger,
  ensureDeadLetterStream,
  ensureReadingsStream,
  jetstreamManager,
  natsConnectionOptions,
  startHttp,
  subjects,
  type HttpServer,
  type Logger,
  type Route,
} from "@datalab/shared";
import type { HubConfig } from "./config";
import { SinkConsumer } from "./consume/consumer";
import { createHubMetrics, type HubMetrics } from "./metrics";
import { migrate } from "./migrate";
import { PostgresSink } from "./sinks/postgres";
import type { Sink } from "./sinks/types";

export interface HubDeps {
  logger?: Logger;
  metrics?: HubMetrics;
  /** Extra sinks (e.g. MongoDB), each with its own durable consumer. */
  sinks?: Sink[];
  /** More HTTP routes (query API, dashboard). */
  routes?: Record<string, Route>;
}

/** The cloud side: JetStream consumers, one per sink, writing idempotently. */
export class Hub {
  readonly logger: Logger;
  readonly metrics: HubMetrics;
  readonly subjects;
  pgPool: pg.Pool | undefined;
  private nc: NatsConnection | undefined;
  private readonly sinks: Sink[] = [];
  private readonly consumers: SinkConsumer[] = [];
  private http: HttpServer | undefined;

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
    if (c.pgEnabled) {
      this.pgPool = new pg.Pool({ connectionString: c.pgUrl, max: c.pgPoolSize, application_name: "datalab-hub" });
      // An idle client losing its server (Postgres restart) must not crash the process.
      this.pgPool.on("error", (err) => this.logger.warn({ err: err.message }, "postgres pool client error"));
      await migrate(this.pgPool, this.logger);
      this.sinks.push(new PostgresSink(this.pgPool, this.logger.child({ sink: "postgres" })));
    }
    this.sinks.push(...(this.deps.sinks ?? []));
    this.nc = await connectNats(natsConnectionOptions(c.natsUrl, c, "datalab-hub"));
    const jsm = await jetstreamManager(this.nc);
    await ensureReadingsStream(jsm, this.subjects, { replicas: c.streamReplicas });
    await ensureDeadLetterStream(jsm, this.subjects, c.streamReplicas);
    for (const sink of this.sinks) {
      const consumer = new SinkConsumer(
        this.nc,
        sink,
        this.subjects,
        {
          maxAckPending: c.maxAckPending,
          ackWaitMs: c.ackWaitMs,
          maxDeliver: c.maxDeliver,
          limits: { maxBytes: c.batchMaxBytes, maxMessages: c.batchMaxMessages },
        },
        this.metrics,
        this.logger.child({ sink: sink.name }),
      );
      await consumer.ensure();
      consumer.start();
      this.consumers.push(consumer);
    }
    this.http = await startHttp({
      port: c.httpPort,
      host: c.httpHost,
      registry: this.metrics.registry,
      logger: this.logger,
      health: () => ({ ok: this.nc !== undefined && !this.nc.isClosed(), consumers: this.consumers.map((x) => x.status()) }),
      ...(this.deps.routes ? { routes: this.deps.routes } : {}),
    });
    this.logger.info({ http: this.http.port, sinks: this.sinks.map((s) => s.name), stream: this.subjects.stream }, "hub started");
  }

  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  get nats(): NatsConnection | undefined {
    return this.nc;
  }

  status() {
    return { consumers: this.consumers.map((x) => x.status()) };
  }

  async stop(): Promise<void> {
    await Promise.all(this.consumers.map((x) => x.stop()));
    await this.http?.close();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
    for (const s of this.sinks) await s.close().catch(() => undefined);
    this.logger.info("hub stopped");
  }
}
