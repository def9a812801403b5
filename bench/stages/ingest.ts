import { uniqueId, waitFor } from "@datalab/shared/testing";
import { flood } from "../lib/flood";
import { cpuSeconds, memoryMb, scrape, startProcess } from "../lib/proc";
import { closedNatsUrl, startGateway, type BenchContext, type Figure } from "./common";

/**
 * MQTT ingest: Mosquitto → gateway → SQLite outbox (committed), beside `mosquitto_sub`
 * receiving the same flood from the same broker. The uplink is down on purpose, so only
 * ingest is measured.
 */
export async function ingestStage(ctx: BenchContext): Promise<Figure[]> {
  const n = ctx.quick ? 20_000 : 100_000;
  const mqtt = new URL(ctx.mqttUrl);

  // The limit: mosquitto_sub, QoS 1, same topic shape, same publisher.
  const subTopic = `bench/${uniqueId("sub")}`;
  const sub = startProcess("mosquitto_sub", ["-h", mqtt.hostname, "-p", mqtt.port || "1883", "-q", "1", "-t", `${subTopic}/#`, "-C", String(n)]);
  await new Promise((r) => setTimeout(r, 500)); // mosquitto_sub has no "subscribed" signal
  const subStart = performance.now();
  await flood({ mqttUrl: ctx.mqttUrl, topicRoot: subTopic, messages: n, sensors: 100, rate: 0, qos: 1 });
  await new Promise<void>((resolve) => (sub.proc.exitCode !== null ? resolve() : sub.proc.once("exit", () => resolve())));
  const subRate = n / ((performance.now() - subStart) / 1000);
  ctx.log(`ingest: mosquitto_sub ${Math.round(subRate)} msg/s`);

  const topic = `bench/${uniqueId("gw")}`;
  const gw = await startGateway({ DATALAB_MQTT_URL: ctx.mqttUrl, DATALAB_NATS_URL: await closedNatsUrl(), DATALAB_MQTT_TOPICS: `${topic}/#`, DATALAB_MQTT_RTL433_TOPICS: "" });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${gw.httpPort}/status`)).ok, "gateway status");
    const cpu0 = cpuSeconds(gw.pid);
    const t0 = performance.now();
    await flood({ mqttUrl: ctx.mqttUrl, topicRoot: topic, messages: n, sensors: 100, rate: 0, qos: 1 });
    await waitFor(async () => (await scrape(gw.httpPort, "datalab_gateway_readings_committed_total")) >= n, `${n} committed readings`, 300_000, 20);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(gw.pid) - cpu0;
    const mem = memoryMb(gw.pid);
    const rate = n / seconds;
    ctx.log(`ingest: gateway ${Math.round(rate)} readings/s, ${cpu.toFixed(2)} CPU-s, peak RSS ${mem.peak.toFixed(0)} MB`);
    return [
      {
        stage: "MQTT ingest → outbox",
        figure: "readings/s",
        value: rate,
        unit: "readings/s",
        limit: { what: "mosquitto_sub, same flood", value: subRate, unit: "msg/s" },
        target: "≥ 0.8× limit",
        met: rate >= 0.8 * subRate,
        note: `${n} single-reading messages, QoS 1`,
      },
      { stage: "MQTT ingest → outbox", figure: "CPU-s per 100k readings", value: (cpu * 100_000) / n, unit: "CPU-s", target: "≤ 2", met: (cpu * 100_000) / n <= 2 },
      { stage: "MQTT ingest → outbox", figure: "peak RSS", value: mem.peak, unit: "MB", target: "≤ 80 MB", met: mem.peak <= 80 },
    ];
  } finally {
    await gw.stop();
  }
}
