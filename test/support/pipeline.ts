/**
 * The whole path in one process for end-to-end tests: a hub and a gateway on the test's own
 * NATS prefix, Postgres database and MQTT topics, against the real servers. Used by the
 * spine, replay, API and dashboard tests; its parts (one hub, one gateway, the streams'
 * clean-up) by the tests that set up the path their own way.
 */
import { silentLogger } from "@datalab/shared";
import {
  createTestDatabase,
  deleteStreams,
  MQTT_URL,
  NATS_URL,
  tempDir,
  uniqueId,
  type TestDatabase,
} from "@datalab/shared/testing";
import { Gateway, loadGatewayConfig } from "@datalab/gateway";
import { Hub, loadHubConfig } from "@datalab/hub";

type Env = Record<string, string>;

export interface HubOptions {
  /** The NATS prefix of the test's own streams. */
  prefix: string;
  pgUrl: string;
  natsUrl?: string;
  /** Added to the defaults, or overriding them. */
  env?: Env;
  deps?: ConstructorParameters<typeof Hub>[1];
}

/** A hub on the test's own NATS prefix and database, its HTTP on a free port; started. */
export async function startHub(o: HubOptions): Promise<Hub> {
  const hub = new Hub(
    loadHubConfig({
      env: {
        DATALAB_NATS_URL: o.natsUrl ?? NATS_URL,
        DATALAB_PG_URL: o.pgUrl,
        DATALAB_NATS_PREFIX: o.prefix,
        DATALAB_HTTP_PORT: "0",
        ...o.env,
      },
    }),
    o.deps ?? { logger: silentLogger() },
  );
  await startOrStop(hub);
  return hub;
}

export interface GatewayOptions {
  /** The NATS prefix, and the root of the gateway's MQTT topics. */
  id: string;
  /** Default `gw-<id>`. */
  gatewayId?: string;
  natsUrl?: string;
  mqttUrl?: string;
  /** Topic filters the gateway reads JSON from (default `<id>/sensors/#`). */
  topics?: string;
  /** Default: a new temporary directory. */
  dataDir?: string;
  /** Added to the defaults, or overriding them. */
  env?: Env;
}

/** A gateway on the test's own NATS prefix and MQTT topics, its HTTP on a free port; started. */
export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const gateway = new Gateway(
    loadGatewayConfig({
      env: {
        DATALAB_NATS_URL: o.natsUrl ?? NATS_URL,
        DATALAB_MQTT_URL: o.mqttUrl ?? MQTT_URL,
        DATALAB_GATEWAY_ID: o.gatewayId ?? `gw-${o.id}`,
        DATALAB_DATA_DIR: o.dataDir ?? tempDir(),
        DATALAB_NATS_PREFIX: o.id,
        DATALAB_HTTP_PORT: "0",
        DATALAB_MQTT_TOPICS: o.topics ?? `${o.id}/sensors/#`,
        ...o.env,
      },
    }),
    { logger: silentLogger() },
  );
  await startOrStop(gateway);
  return gateway;
}

/** A start that fails half-way leaves nothing running behind the test's back. */
async function startOrStop(service: { start(): Promise<unknown>; stop(): Promise<unknown> }): Promise<void> {
  try {
    await service.start();
  } catch (err) {
    await service.stop().catch(() => undefined);
    throw err;
  }
}

/** Rows in `readings` matching an optional WHERE clause. */
export async function countReadings(db: TestDatabase, where = "TRUE", params: unknown[] = []): Promise<number> {
  const r = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM readings WHERE ${where}`, params);
  return Number(r.rows[0]!.n);
}

export interface Pipeline {
  /** Unique to this pipeline: the NATS prefix, and the root of its MQTT topics. */
  id: string;
  gatewayId: string;
  db: TestDatabase;
  hub: Hub;
  gateway: Gateway;
  mqttUrl: string;
  /** Rows in `readings` matching an optional WHERE clause. */
  count(where?: string, params?: unknown[]): Promise<number>;
  /** Stop both, delete the streams, drop the database. */
  stop(): Promise<void>;
}

export interface PipelineOptions {
  id?: string;
  gatewayId?: string;
  mqttUrl?: string;
  /** Topic filters the gateway reads JSON from (default `<id>/sensors/#`). */
  topics?: string;
  hubEnv?: Env;
  gatewayEnv?: Env;
}

export async function startPipeline(o: PipelineOptions = {}): Promise<Pipeline> {
  const id = o.id ?? uniqueId("p");
  const gatewayId = o.gatewayId ?? `gw-${id}`;
  const mqttUrl = o.mqttUrl ?? MQTT_URL;
  const db = await createTestDatabase();
  const hub = await startHub({ prefix: id, pgUrl: db.url, env: { DATALAB_HTTP_HOST: "127.0.0.1", ...o.hubEnv } });
  const gateway = await startGateway({ id, gatewayId, mqttUrl, topics: o.topics, env: o.gatewayEnv });
  return {
    id,
    gatewayId,
    db,
    hub,
    gateway,
    mqttUrl,
    count: (where, params) => countReadings(db, where, params),
    async stop() {
      await gateway.stop();
      await hub.stop();
      await deleteStreams(id);
      await db.drop();
    },
  };
}
