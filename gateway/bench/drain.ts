/**
 * Drain benchmark: a backlog of N readings in the outbox (an outage's worth), then the
 * forwarder sends it through NATS JetStream until the outbox is empty. What is timed is
 * outbox → batch → publish → PubAck → delete, with `synchronous=FULL`, i.e. what the
 * gateway does after an outage. Postgres is not involved (that is the hub's job).
 *
 *   pnpm exec tsx gateway/bench/drain.ts [--readings 1000000] [--per-message 1] [--batch 2000]
 *     [--nats nats://127.0.0.1:4222]
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsConnectionOptions, silentLogger, subjects } from "@datalab/shared";
import { tempDir, uniqueId, waitFor } from "@datalab/shared/testing";
import { Forwarder } from "../src/forward/forwarder";
import { createGatewayMetrics } from "../src/metrics";
import { Outbox, type AcceptedMessage } from "../src/outbox/store";
import { NatsUplink } from "../src/uplink/nats";

const { values } = parseArgs({
  options: {
    readings: { type: "string", default: "1000000" },
    "per-message": { type: "string", default: "1" },
    batch: { type: "string", default: "2000" },
    nats: { type: "string", default: process.env.DATALAB_NATS_URL ?? "nats://127.0.0.1:4222" },
    synchronous: { type: "string", default: "FULL" },
  },
});
const total = Number(values.readings);
const perMessage = Number(values["per-message"]);
const batchReadings = Number(values.batch);
const natsUrl = values.nats!;
const METRICS = ["temperature", "humidity", "battery", "light", "pressure"];

function message(i: number, now: number): AcceptedMessage {
  const sensor = `sensor-${i % 100}`;
  const readings = Array.from({ length: perMessage }, (_, k) => ({
    sensorId: sensor,
    metric: METRICS[k % METRICS.length]!,
    value: 20 + (i % 100) / 10 + k,
    unit: "Cel",
    ts: now,
  }));
  const payload = Buffer.from(
    JSON.stringify({ sensor, ...Object.fromEntries(readings.map((r) => [r.metric, r.value])) }),
  );
  return { source: "mqtt:sensors/bench", receivedAt: now, payload, readings };
}

const dir = tempDir("datalab-bench-");
const prefix = uniqueId("bench");
const subj = subjects(prefix);
const outbox = Outbox.open(join(dir, "outbox.db"), {
  logger: silentLogger(),
  maxBytes: 4 * 1024 ** 3,
  synchronous: values.synchronous === "NORMAL" ? "NORMAL" : "FULL",
});

// The backlog, committed in groups of 1,000 readings as the group committer would.
let t = performance.now();
const messagesTotal = Math.ceil(total / perMessage);
const group = Math.max(1, Math.floor(1_000 / perMessage));
const now = Date.now() - 3_600_000;
for (let i = 0; i < messagesTotal; i += group) {
  const batch: AcceptedMessage[] = [];
  for (let k = i; k < Math.min(messagesTotal, i + group); k++) batch.push(message(k, now));
  outbox.commit(batch);
}
const fillSeconds = (performance.now() - t) / 1000;
const stats = outbox.stats();
const file = outbox.fileBytes();
console.log(
  `backlog: ${stats.readings.toLocaleString("en-US")} readings ` +
    `in ${stats.messages.toLocaleString("en-US")} messages, ` +
    `${(stats.bytes / 1024 ** 2).toFixed(1)} MiB of wire messages, file ${(file.total / 1024 ** 2).toFixed(1)} MiB; ` +
    `committed at ${Math.round(stats.readings / fillSeconds).toLocaleString("en-US")} readings/s ` +
    `(groups of ${group} messages, synchronous=${values.synchronous})`,
);

async function startProfile(): Promise<() => Promise<void>> {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(process.env.BENCH_CPU_PROFILE!, JSON.stringify(profile));
    session.disconnect();
  };
}

const uplink = new NatsUplink({
  connection: natsConnectionOptions([natsUrl], {}, "bench"),
  subjects: subj,
  ensureStream: true,
  logger: silentLogger(),
});
await waitFor(() => uplink.status().state === "connected", "the uplink to connect");
const metrics = createGatewayMetrics(false);
const f = new Forwarder(
  outbox,
  uplink,
  subj.readings("bench"),
  "bench",
  { maxReadings: batchReadings, maxBytes: 512 * 1024, maxAgeMs: 100, maxReadingsPerSec: 0, maxBytesPerSec: 0 },
  metrics,
  silentLogger(),
);
// Event-loop delay while draining: what ingest would feel.
const { monitorEventLoopDelay } = await import("node:perf_hooks");
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
// BENCH_CPU_PROFILE=file.cpuprofile: a CPU profile of the drain alone (not the fill).
const profile = process.env.BENCH_CPU_PROFILE ? await startProfile() : undefined;
t = performance.now();
f.start();
await waitFor(() => outbox.stats().readings === 0, "the drain", 3_600_000, 5);
const seconds = (performance.now() - t) / 1000;
loop.disable();
await profile?.();
await f.stop();
const batches = (await metrics.forwardedBatches.get()).values[0]?.value ?? 0;
console.log(
  `drain: ${stats.readings.toLocaleString("en-US")} readings in ${seconds.toFixed(2)} s = ` +
    `${Math.round(stats.readings / seconds).toLocaleString("en-US")} readings/s ` +
    `(${batches} batches of up to ${batchReadings}, ` +
    `${(stats.bytes / 1024 ** 2 / seconds).toFixed(1)} MiB/s of messages), ` +
    "outbox → JetStream PubAck → delete",
);
console.log(
  `event-loop delay while draining: p50 ${(loop.percentile(50) / 1e6).toFixed(1)} ms, ` +
    `p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`,
);

await uplink.close();
outbox.close();
const nc = await connect({ servers: natsUrl });
const jsm = await jetstreamManager(nc);
const info = await jsm.streams.info(subj.stream);
console.log(
  `stream ${subj.stream}: ${info.state.messages} batches, ` +
    `${(info.state.bytes / 1024 ** 2).toFixed(1)} MiB (deleted now)`,
);
await jsm.streams.delete(subj.stream);
await nc.close();
rmSync(dir, { recursive: true, force: true });
