import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureReadingsStream, silentLogger, subjects } from "@datalab/shared";
import { startNatsServer, uniqueId, waitFor, type NatsServer } from "@datalab/shared/testing";
import { Gateway } from "../src/gateway";
import type { GatewayStatus } from "../src/status";
import {
  GatewayProcess,
  getJson,
  mqttClient,
  publishRange,
  runCli,
  testWorld,
  worldConfig,
  type TestWorld,
} from "./support/gateway";
import { countReadings, natsAdmin, readBatches } from "./support/stream";

/*
 * One NATS server with two users: an admin (creates the stream, as the hub would) and a
 * gateway whose permissions are the minimal set for forwarding (deploy/nats/auth.conf):
 *   publish   <prefix>.readings.<its id>, <prefix>.status.<its id>   (nothing else, not even $JS.API)
 *   subscribe _INBOX_<its id>.>   (JetStream's PubAck comes back on its own reply inbox)
 * The two gateways with a hostile one are in test/hostile-gateway.test.ts.
 */
const prefix = uniqueId("auth");
const gatewayId = uniqueId("gwa");
const GW_PASSWORD = `gw-pass-${uniqueId("s")}`;
const ADMIN_PASSWORD = `admin-pass-${uniqueId("s")}`;
const WRONG_PASSWORD = `wrong-pass-${uniqueId("s")}`;

let nats: NatsServer;
let publisher: MqttClient;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  nats = await startNatsServer({
    config: `
authorization {
  users = [
    { user: "admin", password: "${ADMIN_PASSWORD}" }
    {
      user: "gw", password: "${GW_PASSWORD}"
      permissions: {
        publish: { allow: ["${prefix}.readings.${gatewayId}", "${prefix}.status.${gatewayId}"] }
        subscribe: { allow: ["_INBOX_${gatewayId}.>"] }
      }
    }
  ]
}
`,
  });
  const admin = await natsAdmin(nats.url, { user: "admin", pass: ADMIN_PASSWORD });
  await ensureReadingsStream(admin.jsm, subjects(prefix));
  await admin.nc.close();
  publisher = await mqttClient();
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await publisher.endAsync();
  await nats.stop();
  rmSync(nats.storeDir, { recursive: true, force: true });
});

function world(env: Record<string, string>): TestWorld {
  const w = testWorld({
    DATALAB_NATS_URL: nats.url,
    DATALAB_NATS_PREFIX: prefix,
    DATALAB_GATEWAY_ID: gatewayId,
    DATALAB_NATS_USER: "gw",
    DATALAB_BATCH_MAX_AGE_MS: "50",
    ...env,
  });
  // Each gateway of this file its own topic, though they share the gateway id the permissions name.
  const topic = `${w.id}/sensors`;
  w.topic = topic;
  w.env.DATALAB_MQTT_TOPICS = `${topic}/#`;
  // The default MQTT client id derives from the gateway id, which these gateways share: two
  // clients with one id would keep kicking each other off the broker.
  w.env.DATALAB_MQTT_CLIENT_ID = `${w.id}-mqtt`;
  cleanup.push(() => rmSync(w.dataDir, { recursive: true, force: true }));
  return w;
}

async function storedReadings(): Promise<number> {
  const admin = await natsAdmin(nats.url, { user: "admin", pass: ADMIN_PASSWORD });
  try {
    return countReadings(await readBatches(admin.jsm, subjects(prefix).stream)).readings;
  } finally {
    await admin.nc.close();
  }
}

async function run(w: TestWorld): Promise<{ gw: GatewayProcess; port: number }> {
  const gw = new GatewayProcess(w.env).start();
  cleanup.push(async () => void (await gw.kill("SIGTERM")));
  return { gw, port: await gw.ready() };
}

describe("NATS with per-gateway permissions", () => {
  it("a gateway with its own credentials (password from a file) publishes its readings", async () => {
    const w = world({});
    const passwordFile = join(w.dataDir, "nats-password");
    writeFileSync(passwordFile, `${GW_PASSWORD}\n`, { mode: 0o600 });
    w.env.DATALAB_NATS_PASSWORD_FILE = passwordFile;
    const { gw } = await run(w);
    const before = await storedReadings();
    await publishRange(publisher, `${w.topic}/ok`, 0, 20);
    await waitFor(async () => (await storedReadings()) === before + 20, "the readings to reach the stream");
    expect(gw.log).not.toContain(GW_PASSWORD);
  });

  it("wrong credentials: authorization error in status, CLI and log; still buffering; no secret logged", async () => {
    const w = world({
      DATALAB_NATS_PASSWORD: WRONG_PASSWORD,
      DATALAB_MQTT_USERNAME: "gw",
      DATALAB_MQTT_PASSWORD: "mqtt-secret-not-to-log",
    });
    // The MQTT credentials are there for the test of the log; the test broker takes anyone.
    const { gw, port } = await run(w);
    const s = await waitFor(async () => {
      const st = await getJson<GatewayStatus>(port, "/status");
      return st.uplink?.problem === "authorization" ? st : undefined;
    }, "the authorization error to show in the status");
    expect(s.uplink?.state).not.toBe("connected");
    expect(s.lastError).toMatch(/refused this gateway's credentials/);
    expect(s.lastError).toMatch(/authorization violation/i);

    await publishRange(publisher, `${w.topic}/bad`, 0, 30);
    await waitFor(
      async () => (await getJson<GatewayStatus>(port, "/status")).outbox.readings === 30,
      "the readings to wait in the outbox",
    );
    const health = await getJson<GatewayStatus & { ok: boolean }>(port, "/healthz");
    expect(health.ok).toBe(true);
    expect(health.uplink?.problem).toBe("authorization");

    const cli = await runCli(["status"], { ...w.env, DATALAB_HTTP_PORT: String(port) });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/problem: authorization/);
    expect(cli.stdout).toMatch(/30 readings/);

    const logged = gw.lines().find((l) => l.problem === "authorization");
    expect(logged?.level).toBe(50);
    expect(String(logged?.err)).toMatch(/credentials/);
    // Secrets never reach the log, not even in the "configuration" line.
    const config = gw.lines().find((l) => l.msg === "configuration")?.config as Record<string, unknown>;
    expect(config.natsPassword).toBe("(set)");
    expect(config.mqttPassword).toBe("(set)");
    expect(gw.log).not.toContain(WRONG_PASSWORD);
    expect(gw.log).not.toContain("mqtt-secret-not-to-log");
  });

  it("right credentials cannot publish as another gateway: a permission problem, readings kept", async () => {
    // It even takes the real gateway's inbox, so only its subject is refused.
    const w = world({
      DATALAB_NATS_PASSWORD: GW_PASSWORD,
      DATALAB_GATEWAY_ID: uniqueId("impostor"),
      DATALAB_NATS_INBOX_PREFIX: `_INBOX_${gatewayId}`,
    });
    const g = new Gateway(worldConfig(w), { logger: silentLogger() });
    cleanup.push(() => g.stop());
    await g.start();
    await publishRange(publisher, `${w.topic}/other`, 0, 5);
    // Its status reports and stream check are refused too, each showing as a permission
    // problem on its own: wait for the publish of its batch to be the one refused.
    await waitFor(
      () =>
        g.status().uplink?.problem === "permission" &&
        /publish to its readings subject/.test(g.status().lastError ?? ""),
      "the permission error to show",
    );
    expect(g.status().outbox.readings).toBe(5);
  });

  it("reply inbox not allowed (the shared _INBOX): says so, naming the setting; readings kept", async () => {
    const w = world({ DATALAB_NATS_PASSWORD: GW_PASSWORD, DATALAB_NATS_INBOX_PREFIX: "_INBOX" });
    const g = new Gateway(worldConfig(w), { logger: silentLogger() });
    cleanup.push(() => g.stop());
    await g.start();
    await publishRange(publisher, `${w.topic}/inbox`, 0, 5);
    await waitFor(
      () => g.status().uplink?.problem === "permission" && /reply inbox/.test(g.status().uplink?.lastError ?? ""),
      "the inbox refusal to show",
    );
    expect(g.status().uplink?.lastError).toMatch(/DATALAB_NATS_INBOX_PREFIX/);
    expect(g.status().outbox.readings).toBe(5);
  });
});
