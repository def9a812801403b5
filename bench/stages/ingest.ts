import { uniqueId, waitFor } from "@datalab/shared/testing";
import { flood } from "../lib/flood";
import { cpuSeconds, median, memoryMb, scrape, startProcess } from "../lib/proc";
import { closedNatsUrl, startGateway, type BenchContext, type Figure } from "./common";

/**
 * MQTT ingest: Mosquitto → gateway → SQLite outbox (committed), beside `mosquitto_sub`
 * receiving the same flood from the same broker. The uplink is down on purpose, so only
 * ingest is measured.
 */
export async function ingestStage(ctx: BenchContext): Promise<Figure[]> {
  const n = ctx.quick ? 20_000 : 100_000;
  // Shared machines drift: alternate limit and gateway in rounds and take medians.
  const rounds = 3;
  const subRates: number[] = [];
  const rates: number[] = [];
  const ratios: number[] = [];
  const cpuPer100k: number[] = [];
  let peak = 0;
  for (let round = 1; round <= rounds; round++) {
    const subRate = (await mosquittoSubRate(ctx, n)).rate;
    const g = await gatewayRate(ctx, n);
    subRates.push(subRate);
    rates.push(g.rate);
    ratios.push(g.rate / subRate);
    cpuPer100k.push((g.cpu * 100_000) / n);
    peak = Math.max(peak, g.peakMb);
    ctx.log(
      `ingest round ${round}: mosquitto_sub ${Math.round(subRate)} msg/s, gateway ${Math.round(g.rate)} readings/s, ` +
        `${g.cpu.toFixed(2)} CPU-s, peak RSS ${g.peakMb.toFixed(0)} MB`,
    );
  }
  const ratio = median(ratios);
  const cpu = median(cpuPer100k);
  return [
    {
      stage: "MQTT ingest → outbox",
      figure: "readings/s",
      value: median(rates),
      unit: "readings/s",
      limit: { what: "mosquitto_sub, same flood", value: median(subRates), unit: "msg/s" },
      target: "≥ 0.8× limit",
      met: ratio >= 0.8,
      note:
        `${n} single-reading messages, QoS 1; medians of ${rounds} alternating rounds, ` +
        `median ratio ${ratio.toFixed(2)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")})`,
    },
    {
      stage: "MQTT ingest → outbox",
      figure: "CPU-s per 100k readings",
      value: cpu,
      unit: "CPU-s",
      target: "≤ 2",
      met: cpu <= 2,
    },
    {
      stage: "MQTT ingest → outbox",
      figure: "peak RSS",
      value: peak,
      unit: "MB",
      target: "≤ 80 MB",
      met: peak <= 80,
      note: `highest of ${rounds} rounds`,
    },
  ];
}

/** The limit: mosquitto_sub, QoS 1, receiving the flood from the same broker and publisher. */
export async function mosquittoSubRate(ctx: BenchContext, n: number): Promise<{ rate: number; stalled: number }> {
  const mqtt = new URL(ctx.mqttUrl);
  const topic = `bench/${uniqueId("sub")}`;
  const sub = startProcess("mosquitto_sub", [
    "-h",
    mqtt.hostname,
    "-p",
    mqtt.port || "1883",
    "-q",
    "1",
    "-t",
    `${topic}/#`,
    "-C",
    String(n),
  ]);
  await new Promise((r) => setTimeout(r, 500)); // mosquitto_sub has no "subscribed" signal
  const t0 = performance.now();
  const f = await flood({ mqttUrl: ctx.mqttUrl, topicRoot: topic, messages: n, sensors: 100, rate: 0, qos: 1 });
  await new Promise<void>((resolve) =>
    sub.proc.exitCode !== null ? resolve() : sub.proc.once("exit", () => resolve()),
  );
  return { rate: n / ((performance.now() - t0) / 1000), stalled: f.stalled };
}

/** The gateway with its uplink down on purpose, so only ingest is measured. */
async function gatewayRate(ctx: BenchContext, n: number): Promise<{ rate: number; cpu: number; peakMb: number }> {
  const topic = `bench/${uniqueId("gw")}`;
  const gw = await startGateway({
    DATALAB_MQTT_URL: ctx.mqttUrl,
    DATALAB_NATS_URL: await closedNatsUrl(),
    DATALAB_MQTT_TOPICS: `${topic}/#`,
    DATALAB_MQTT_RTL433_TOPICS: "",
  });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${gw.httpPort}/status`)).ok, "gateway status");
    const cpu0 = cpuSeconds(gw.pid);
    const t0 = performance.now();
    await flood({ mqttUrl: ctx.mqttUrl, topicRoot: topic, messages: n, sensors: 100, rate: 0, qos: 1 });
    await waitFor(
      async () => (await scrape(gw.httpPort, "datalab_gateway_readings_committed_total")) >= n,
      `${n} committed readings`,
      300_000,
      20,
    );
    const seconds = (performance.now() - t0) / 1000;
    return { rate: n / seconds, cpu: cpuSeconds(gw.pid) - cpu0, peakMb: memoryMb(gw.pid).peak };
  } finally {
    await gw.stop();
  }
}
