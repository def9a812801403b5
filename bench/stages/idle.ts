import { readFileSync } from "node:fs";
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
 * A gateway with 100 sensors at 1 Hz, beside a bare `node -e 'setInterval(()=>{},1000)'`,
 * over the same window. The uplink is the real NATS, so forwarding is included.
 */
export async function idleStage(ctx: BenchContext): Promise<Figure[]> {
  const seconds = ctx.quick ? 15 : 60;
  const prefix = uniqueId("bi");
  const topic = `bench/${prefix}`;
  const bare = startProcess(process.execPath, ["-e", "setInterval(()=>{},1000)"]);
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
    return [
      {
        stage: "Gateway idle, 100 sensors at 1 Hz",
        figure: "RSS (median)",
        value: gwRss,
        unit: "MB",
        limit: { what: "bare node setInterval", value: median(bareRss), unit: "MB" },
        target: "≤ 60 MB",
        met: gwRss <= 60,
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
