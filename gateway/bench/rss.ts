/**
 * Memory benchmark: the gateway as a real process (`node --import tsx gateway/src/cli.ts run`,
 * what `pnpm gateway run` starts), fed over MQTT, forwarding to NATS JetStream. RSS is read
 * from /proc/<pid>/status (Linux).
 *
 *   idle:  100 sensors, one message a second each (3 readings per message)
 *   flood: messages as fast as the broker takes them, for a while
 *
 *   pnpm exec tsx gateway/bench/rss.ts [--idle-seconds 40] [--flood-seconds 20] [--entry FILE]
 *     ["--node-flags=--flag ..."]
 *
 * --entry runs `node [flags] FILE run` instead (e.g. a bundle of cli.ts built with esbuild):
 * tsx's loader runs in a thread of its own, whose memory would count in the RSS measured.
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { subjects } from "@datalab/shared";
import { MQTT_URL, NATS_URL, tempDir, uniqueId, waitFor } from "@datalab/shared/testing";

const { values } = parseArgs({
  options: {
    "idle-seconds": { type: "string", default: "40" },
    "flood-seconds": { type: "string", default: "20" },
    entry: { type: "string" },
    "node-flags": { type: "string", default: "" },
  },
});
const idleSeconds = Number(values["idle-seconds"]);
const floodSeconds = Number(values["flood-seconds"]);

const root = fileURLToPath(new URL("../..", import.meta.url));
const id = uniqueId("rss");
const dataDir = tempDir("datalab-rss-");
const env = {
  ...process.env,
  DATALAB_GATEWAY_ID: id,
  DATALAB_NATS_PREFIX: id,
  DATALAB_NATS_URL: NATS_URL,
  DATALAB_MQTT_URL: MQTT_URL,
  DATALAB_MQTT_TOPICS: `${id}/sensors/#`,
  DATALAB_MQTT_RTL433_TOPICS: `${id}/rtl_433/+/events`,
  DATALAB_DATA_DIR: dataDir,
  DATALAB_HTTP_PORT: "0",
  DATALAB_LOG_LEVEL: "info",
};
const flags = values["node-flags"]!.split(" ").filter(Boolean);
const args = values.entry
  ? [...flags, values.entry, "run"]
  : [...flags, "--import", "tsx", "gateway/src/cli.ts", "run"];
console.log(`running: node ${args.join(" ")}`);
const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
let log = "";
child.stderr.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-100_000)));
const port = await waitFor(() => /"http":(\d+)[^\n]*"gateway started"/.exec(log)?.[1], "the gateway to start");

const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;
const received = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(/^datalab_gateway_messages_received_total\{[^}]*\} (\d+)/gm)].reduce(
    (s, m) => s + Number(m[1]),
    0,
  );
};
const heapMiB = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const v = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)`, "m").exec(text)?.[1] ?? 0) / 1024 ** 2;
  const used = v("datalab_gateway_nodejs_heap_size_used_bytes").toFixed(1);
  const total = v("datalab_gateway_nodejs_heap_size_total_bytes").toFixed(1);
  const external = v("datalab_gateway_nodejs_external_memory_bytes").toFixed(1);
  return `V8 heap ${used} used of ${total} MiB, external ${external} MiB`;
};
const forwarded = async () =>
  Number(
    /^datalab_gateway_forwarded_readings_total\{[^}]*\} (\d+)/m.exec(
      await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    )?.[1] ?? 0,
  );
const pub = mqtt.connect(MQTT_URL, { protocolVersion: 5 });
await new Promise((r) => pub.once("connect", r));
const message = (i: number) => {
  const k = i % 100;
  const temperature = (20 + (i % 50) / 10).toFixed(1);
  return `{"sensor":"s${k}","temperature":${temperature},"humidity":${40 + (i % 20)},"battery":3.${i % 10}}`;
};
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(1)} MiB, max ${s[s.length - 1]!.toFixed(1)} MiB`;
};

console.log(`gateway pid ${child.pid}, started: RSS ${rssMiB().toFixed(1)} MiB`);

// Idle: 100 sensors at 1 Hz = one message every 10 ms. Sampled after the first 10 s.
let i = 0;
const idle: number[] = [];
const t0 = Date.now();
const ticker = setInterval(() => pub.publish(`${id}/sensors/s${i % 100}`, message(i++)), 10);
while (Date.now() - t0 < idleSeconds * 1000) {
  await new Promise((r) => setTimeout(r, 500));
  if (Date.now() - t0 > 10_000) idle.push(rssMiB());
}
clearInterval(ticker);
console.log(`idle (100 sensors at 1 Hz, ${idleSeconds} s, ${i} messages): RSS ${stats(idle)}; ${await heapMiB()}`);

// Flood: keep about 2,000 messages ahead of what the gateway has received.
const flood: number[] = [];
const r0 = await received();
const f0 = Date.now();
let sent = 0;
while (Date.now() - f0 < floodSeconds * 1000) {
  const got = (await received()) - r0;
  for (; sent < got + 2_000; sent++) pub.publish(`${id}/sensors/s${sent % 100}`, message(sent));
  flood.push(rssMiB());
  if (flood.length % 40 === 0) console.log(`  mid-flood: RSS ${rssMiB().toFixed(1)} MiB; ${await heapMiB()}`);
  await new Promise((r) => setTimeout(r, 50));
}
const took = (await received()) - r0;
console.log(
  `flood (${floodSeconds} s): ${Math.round(took / floodSeconds).toLocaleString("en-US")} messages/s ` +
    `(${Math.round((3 * took) / floodSeconds).toLocaleString("en-US")} readings/s) taken in; RSS ${stats(flood)}`,
);
await waitFor(async () => (await forwarded()) >= 3 * (i + took), "the gateway to forward everything", 120_000, 200);
console.log(`after the flood, everything forwarded: RSS ${rssMiB().toFixed(1)} MiB`);

child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));
pub.end();
const nc = await connect({ servers: NATS_URL });
await (await jetstreamManager(nc)).streams.delete(subjects(id).stream).catch(() => undefined);
await nc.close();
rmSync(dataDir, { recursive: true, force: true });
