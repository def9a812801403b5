/**
 * The whole path in one process for end-to-end tests: a hub and a gateway on the test's own
 * NATS prefix, Postgres database and MQTT topics, against the real servers. Used by the
 * spine, replay, API and dashboard tests.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { silentLogger, subjects } from "@datalab/shared";
import { createTestDatabase, MQTT_URL, NATS_URL, tempDir, uniqueId, type TestDatabase } from "@datalab/shared/testing";
import { Gateway, loadGatewayConfig } from "@datalab/gateway";
import { Hub, loadHubConfig } from "@datalab/hub";

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
  hubEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
}

export async function startPipeline(o: PipelineOptions = {}): Promise<Pipeline> {
  const id = o.id ?? uniqueId("p");
  const gatewayId = o.gatewayId ?? `gw-${id}`;
  const mqttUrl = o.mqttUrl ?? MQTT_URL;
  const db = await createTestDatabase();
  const hub = new Hub(
    loadHubConfig({
      env: {
        DATALAB_NATS_URL: NATS_URL,
        DATALAB_PG_URL: db.url,
        DATALAB_NATS_PREFIX: id,
        DATALAB_HTTP_PORT: "0",
        DATALAB_HTTP_HOST: "127.0.0.1",
        ...o.hubEnv,
      },
    }),
    { logger: silentLogger() },
  );
  await hub.start();
  const gateway = new Gateway(
    loadGatewayConfig({
      env: {
        DATALAB_NATS_URL: NATS_URL,
        DATALAB_MQTT_URL: mqttUrl,
        DATALAB_GATEWAY_ID: gatewayId,
        DATALAB_DATA_DIR: tempDir(),
        DATALAB_NATS_PREFIX: id,
        DATALAB_HTTP_PORT: "0",
        DATALAB_MQTT_TOPICS: o.topics ?? `${id}/sensors/#`,
        ...o.gatewayEnv,
      },
    }),
    { logger: silentLogger() },
  );
  await gateway.start();
  return {
    id,
    gatewayId,
    db,
    hub,
    gateway,
    mqttUrl,
    async count(where = "TRUE", params = []) {
      const r = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM readings WHERE ${where}`, params);
      return Number(r.rows[0]!.n);
    },
    async stop() {
      await gateway.stop();
      await hub.stop();
      const nc = await connect({ servers: NATS_URL });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.delete(subjects(id).stream).catch(() => undefined);
        await jsm.streams.delete(subjects(id).deadLetterStream).catch(() => undefined);
      } finally {
        await nc.close();
      }
      await db.drop();
    },
  };
}
