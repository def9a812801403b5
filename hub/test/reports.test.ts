/**
 * Gateways' health reports, end to end on the real servers: the gateway sends its backlog,
 * health and quarantine counts over core NATS; the hub stores them in `gateways`; the query
 * API shows them. A report on one gateway's subject claiming another is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { metricValue, subjects, type GatewayReport } from "@datalab/shared";
import { MQTT_URL, NATS_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import { startPipeline, type Pipeline } from "../../test/support/pipeline";

const id = uniqueId("rep");
let pipeline: Pipeline;
let nc: NatsConnection;

interface ApiGateway {
  gatewayId: string;
  backlog: { readings: number | null; bytes: number | null; oldestAt: number | null };
  health: string | null;
  quarantine: Record<string, number> | null;
  reportedAt: number | null;
}

async function gatewayRow(): Promise<ApiGateway | undefined> {
  const res = await fetch(`http://127.0.0.1:${pipeline.hub.httpPort}/api/gateways`);
  const body = (await res.json()) as { gateways: ApiGateway[] };
  return body.gateways.find((g) => g.gatewayId === pipeline.gatewayId);
}

beforeAll(async () => {
  // The gateway reports on every tick (once a second).
  pipeline = await startPipeline({ id, gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "100" } });
  nc = await connect({ servers: NATS_URL });
  const client = await mqtt.connectAsync(MQTT_URL);
  await client.publishAsync(`${id}/sensors/r1`, JSON.stringify({ sensor: `r1-${id}`, temperature: 20.5 }), { qos: 1 });
  await client.publishAsync(`${id}/sensors/r1`, "{'not': 'json'}", { qos: 1 });
  await client.endAsync();
  await waitFor(async () => (await pipeline.count("sensor_id = $1", [`r1-${id}`])) === 1, "the reading in Postgres");
});

afterAll(async () => {
  await nc?.close();
  await pipeline?.stop();
});

describe("gateway health reports", () => {
  it("reach the hub: the API shows the gateway's backlog, health and quarantine counts", async () => {
    const g = await waitFor(async () => {
      const row = await gatewayRow();
      return row && row.reportedAt !== null && row.quarantine?.not_json === 1 ? row : undefined;
    }, "a stored report with the quarantined message");
    expect(g.health).toBe("ok");
    expect(g.backlog.readings).toBe(0);
    expect(g.backlog.bytes).toBe(0);
    expect(g.backlog.oldestAt).toBeNull();
    expect(Date.now() - g.reportedAt!).toBeLessThan(30_000);
  });

  it("carry the newest quarantined payloads, which the hub serves as text at /api/quarantine", async () => {
    const url = `http://127.0.0.1:${pipeline.hub.httpPort}/api/quarantine?gateway=${pipeline.gatewayId}`;
    const body = await waitFor(async () => {
      const b = (await (await fetch(url)).json()) as {
        gateways: {
          gatewayId: string;
          counts: Record<string, number>;
          recent: { reason: string; payload: string; payloadBytes: number; source: string }[];
        }[];
      };
      return b.gateways[0]?.recent.length ? b : undefined;
    }, "the quarantined payload at /api/quarantine");
    const g = body.gateways[0]!;
    expect(g.gatewayId).toBe(pipeline.gatewayId);
    expect(g.counts).toEqual({ not_json: 1 });
    expect(g.recent).toHaveLength(1);
    expect(g.recent[0]).toMatchObject({ reason: "not_json", payload: "{'not': 'json'}", payloadBytes: 15 });
    expect(g.recent[0]!.source).toMatch(/^mqtt:/);
    const unknown = await fetch(`http://127.0.0.1:${pipeline.hub.httpPort}/api/quarantine?gateway=nobody-${id}`);
    expect(unknown.status).toBe(404);
    await unknown.text();
  });

  it("refuses a report whose payload names another gateway than its subject", async () => {
    const before = await metricValue(pipeline.hub.metrics.registry, "datalab_hub_gateway_reports_total", {
      outcome: "gateway_mismatch",
    });
    const forged: GatewayReport = {
      v: 1,
      gatewayId: "someone-else",
      instance: "x",
      sentAt: Date.now(),
      health: "ok",
      backlog: { readings: 999_999, bytes: 1, oldestAt: null },
      quarantine: {},
      dropped: {},
      forwardingPerSecond: null,
      lastError: null,
    };
    nc.publish(subjects(id).status(pipeline.gatewayId), JSON.stringify(forged));
    await waitFor(
      async () =>
        (await metricValue(pipeline.hub.metrics.registry, "datalab_hub_gateway_reports_total", {
          outcome: "gateway_mismatch",
        })) > before,
      "the forged report counted as refused",
    );
    expect((await gatewayRow())?.backlog.readings).not.toBe(999_999);
  });
});
