/**
 * `pnpm demo`: simulated sensors → Mosquitto → gateway → NATS JetStream → hub → PostgreSQL,
 * all in one process, against the servers at the configured addresses.
 */
import { connect } from "node:net";
import { createLogger, errorMessage } from "@datalab/shared";
import { Gateway, loadGatewayConfig } from "@datalab/gateway";
import { Hub, loadHubConfig } from "@datalab/hub";
import { publishSimulation } from "@datalab/sensors";

const log = createLogger("demo");

function reachable(url: string, defPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port || defPort), u.hostname);
    s.setTimeout(1_500, () => (s.destroy(), resolve(false)));
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

async function main(): Promise<void> {
  const hubConfig = loadHubConfig({ overrides: { httpPort: Number(process.env.DATALAB_HTTP_PORT ?? 8080) } });
  const gwConfig = loadGatewayConfig({
    env: { ...process.env, DATALAB_HTTP_PORT: process.env.DATALAB_GATEWAY_HTTP_PORT ?? "9101", DATALAB_DATA_DIR: process.env.DATALAB_DATA_DIR ?? ".data/demo-gateway" },
  });
  const checks = [
    ["MQTT broker", gwConfig.mqttUrl, 1883, "DATALAB_MQTT_URL"],
    ["NATS", hubConfig.natsUrl[0]!, 4222, "DATALAB_NATS_URL"],
    ["PostgreSQL", hubConfig.pgUrl, 5432, "DATALAB_PG_URL"],
  ] as const;
  const missing: string[] = [];
  for (const [name, url, port, env] of checks) {
    const ok = await reachable(url, port);
    log.info({ server: name, url: url.replace(/\/\/[^@]*@/, "//"), reachable: ok }, ok ? `${name}: using ${url}` : `${name}: not reachable`);
    if (!ok) missing.push(`${name} at ${url} (set ${env})`);
  }
  if (missing.length > 0) {
    process.stderr.write(
      `\nThe demo needs these servers, which do not answer:\n  - ${missing.join("\n  - ")}\n` +
        "Start them (on Debian: sudo scripts/services.sh), or run the containerised stack: docker compose -f deploy/compose.yaml up\n",
    );
    process.exit(1);
  }
  const hub = new Hub(hubConfig, { logger: log.child({ part: "hub" }) });
  await hub.start();
  const gateway = new Gateway(gwConfig, { logger: log.child({ part: "gateway" }) });
  await gateway.start();
  const ac = new AbortController();
  const sim = publishSimulation({
    mqttUrl: gwConfig.mqttUrl,
    sensors: 10,
    rate: 5,
    seed: "demo",
    format: "multi",
    topicRoot: "sensors",
    signal: ac.signal,
  }).catch((err: unknown) => log.error({ err: errorMessage(err) }, "simulator stopped"));
  process.stdout.write(
    `\nWireless Sensor DataLab demo is running.\n` +
      `  hub:      http://127.0.0.1:${hub.httpPort}/healthz   metrics: http://127.0.0.1:${hub.httpPort}/metrics\n` +
      `  gateway:  http://127.0.0.1:${gateway.httpPort}/status    metrics: http://127.0.0.1:${gateway.httpPort}/metrics\n` +
      `  readings: psql ${hubConfig.pgUrl} -c 'select * from readings order by ts desc limit 10'\n` +
      `Ctrl-C stops it.\n\n`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  log.info("stopping");
  ac.abort();
  await sim;
  await gateway.stop();
  await hub.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
