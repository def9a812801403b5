import { readFileSync } from "node:fs";
import { join } from "node:path";
import { uniqueId } from "@datalab/shared/testing";
import { flood } from "../lib/flood";
import { cpuSeconds, cpuTimes, memoryMb, median, startProcess } from "../lib/proc";
import { startGateway, type BenchContext, type Figure } from "./common";

/** Bytes the process caused to be written to storage (the kernel's `write_bytes`, /proc/<pid>/io). */
function diskWriteBytes(pid: number): number {
  const m = /^write_bytes:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
  if (!m) throw new Error(`/proc/${pid}/io has no write_bytes`);
  return Number(m[1]);
}

/**
 * A process's resident memory split (MB, /proc/<pid>/smaps_rollup): anonymous pages (V8's
 * heap, malloc) are its own; file-backed ones are mostly the `node` binary's code and data,
 * which the kernel shares and can drop under memory pressure, and which only grows with the
 * parts of Node.js and V8 the process uses (TurboFan, the ES module loader, http, crypto...).
 */
function rssSplit(pid: number): { anon: number; file: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { anon: kb("Anonymous") / 1024, file: (kb("Rss") - kb("Anonymous")) / 1024 };
}

/**
 * A gateway with 100 sensors at 1 Hz, beside a bare `node -e 'setInterval(()=>{},1000)'`,
 * over the same window. The uplink is the real NATS, so forwarding is included.
 */
export async function idleStage(ctx: BenchContext): Promise<Figure[]> {
  const seconds = ctx.quick ? 15 : 60;
  const prefix = uniqueId("bi");
  const topic = `bench/${prefix}`;
  // The bare process runs the gateway's own Node.js (a release's bin/node when one is measured).
  const how = process.env.DATALAB_BENCH_GATEWAY ?? "";
  const nodeBin = how && how !== "tsx" ? join(how, "bin/node") : process.execPath;
  const bare = startProcess(nodeBin, ["-e", "setInterval(()=>{},1000)"]);
  const gw = await startGateway({
    DATALAB_MQTT_URL: ctx.mqttUrl,
    DATALAB_NATS_URL: ctx.natsUrl,
    DATALAB_NATS_PREFIX: prefix,
    DATALAB_MQTT_TOPICS: `${topic}/#`,
    DATALAB_MQTT_RTL433_TOPICS: "",
  });
  try {
    // Warm up for a few seconds (JIT, first batches), then measure.
    const warm = flood({
      mqttUrl: ctx.mqttUrl,
      topicRoot: topic,
      messages: 100 * (seconds + 5),
      sensors: 100,
      rate: 100,
      qos: 1,
    });
    await new Promise((r) => setTimeout(r, 5_000));
    const g0 = cpuTimes(gw.pid);
    const b0 = cpuSeconds(bare.pid);
    const w0 = diskWriteBytes(gw.pid);
    const t0 = performance.now();
    const rss: number[] = [];
    const bareRss: number[] = [];
    while (performance.now() - t0 < seconds * 1000) {
      await new Promise((r) => setTimeout(r, 1_000));
      rss.push(memoryMb(gw.pid).rss);
      bareRss.push(memoryMb(bare.pid).rss);
    }
    const wall = (performance.now() - t0) / 1000;
    const split = rssSplit(gw.pid);
    const bareSplit = rssSplit(bare.pid);
    const g1 = cpuTimes(gw.pid);
    // SD-card wear: what the outbox writes per reading at this load (the flood is paced at 100/s).
    const bytesPerReading = (diskWriteBytes(gw.pid) - w0) / (100 * wall);
    const user = ((g1.user - g0.user) / wall) * 100;
    const system = ((g1.system - g0.system) / wall) * 100;
    const cpu = user + system;
    const bareCpu = ((cpuSeconds(bare.pid) - b0) / wall) * 100;
    await warm;
    const gwRss = median(rss);
    const gibPerDay = ((bytesPerReading * 100 * 86_400) / 1024 ** 3).toFixed(2);
    ctx.log(
      `idle: disk writes ${bytesPerReading.toFixed(0)} bytes per reading (${gibPerDay} GiB a day at 100 readings/s)`,
    );
    ctx.log(
      `idle: gateway RSS ${gwRss.toFixed(0)} MB, CPU ${cpu.toFixed(2)} % ` +
        `(user ${user.toFixed(2)}, kernel ${system.toFixed(2)}); ` +
        `bare node ${median(bareRss).toFixed(0)} MB, ${bareCpu.toFixed(2)} %`,
    );
    const splitNote =
      `at the end: gateway ${split.anon.toFixed(1)} MB anonymous + ${split.file.toFixed(1)} MB file-backed, ` +
      `bare node ${bareSplit.anon.toFixed(1)} + ${bareSplit.file.toFixed(1)} MB`;
    ctx.log(`idle: RSS ${splitNote}`);
    return [
      {
        stage: "Gateway idle, 100 sensors at 1 Hz",
        figure: "RSS (median)",
        value: gwRss,
        unit: "MB",
        limit: { what: "bare node setInterval", value: median(bareRss), unit: "MB" },
        target: "≤ 60 MB",
        met: gwRss <= 60,
        note: `${splitNote} (file-backed: mostly the node binary's pages)`,
      },
      {
        stage: "Gateway idle, 100 sensors at 1 Hz",
        figure: "Disk writes per reading",
        value: bytesPerReading,
        unit: "bytes",
        target: "≤ 200 bytes",
        met: bytesPerReading <= 200,
        note: `write_bytes of /proc/<pid>/io over ${seconds} s; ${gibPerDay} GiB a day at this load`,
      },
      {
        stage: "Gateway idle, 100 sensors at 1 Hz",
        figure: "CPU",
        value: cpu,
        unit: "% of a core",
        limit: { what: "bare node setInterval", value: bareCpu, unit: "% of a core" },
        target: "≤ 2 %",
        met: cpu <= 2,
        note: `user ${user.toFixed(2)} + kernel ${system.toFixed(2)} % of a core, over ${seconds} s`,
      },
    ];
  } finally {
    await gw.stop();
    await bare.stop();
  }
}
