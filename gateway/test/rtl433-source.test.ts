/**
 * rtl_433 as a child process and over MQTT, both through the rtl_433 codec, into a real
 * Gateway's outbox. No radio is attached: the real rtl_433 binary decodes demodulated test
 * bits given with `-y`, and stand-in commands print the fixture lines and exit, which also
 * exercises the restart.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { freePort, waitFor } from "@datalab/shared/testing";
import type { MqttClient } from "mqtt";
import { Gateway } from "../src/gateway";
import type { Ingest } from "../src/ingest/index";
import { codecMetrics, createGatewayMetrics } from "../src/metrics/index";
import { messageDecoder } from "../src/sources/mqtt/decoder";
import { Rtl433ProcessSource, type Rtl433SourceOptions, type Rtl433SourceStatus } from "../src/sources/rtl433/source";
import { mqttClient, scrape, testWorld, worldConfig, type TestWorld } from "./support/gateway";
import { wireMessagesIn } from "./support/outbox";

const FIXTURE = fileURLToPath(new URL("../../../shared/fixtures/rtl_433/events.jsonl", import.meta.url));
const LEGACY_FIXTURE = fileURLToPath(new URL("../../../shared/fixtures/rtl_433/events-legacy.jsonl", import.meta.url));
/**
 * 44 events in the fixture; the codec makes 137 readings of them (LaCrosse-TX34IT's rain_raw with
 * an unknown unit among them).
 */
const FIXTURE_EVENTS = readFileSync(FIXTURE, "utf8").split("\n").filter(Boolean);
const FIXTURE_READINGS = 137;

const HAS_RTL433 = spawnSync("sh", ["-c", "command -v rtl_433"], { encoding: "utf8" }).stdout.trim() !== "";
/** Nexus-TH id 201, channel 3, 29.4 °C, 30 %RH: three repeats of the 36-bit row, as the decoder wants. */
const NEXUS_BITS = "{36}c9a126f1e {36}c9a126f1e {36}c9a126f1e";

interface StoredReading {
  sensorId: string;
  metric: string;
  value: number;
  source: string;
}

function outboxReadings(g: Gateway): StoredReading[] {
  return wireMessagesIn(g.outbox).flatMap((wire) =>
    wire.readings.map((r) => ({ ...(r as Omit<StoredReading, "source">), source: wire.source })),
  );
}

function rtlStatus(g: Gateway): Rtl433SourceStatus {
  const s = g.status().sources.find((x) => x.name.startsWith("rtl433:"));
  if (!s) throw new Error("no rtl433 source in the status");
  return s as Rtl433SourceStatus;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function gatewayWith(
  env: Record<string, string>,
  source?: Omit<Rtl433SourceOptions, "metrics" | "logger">,
): Promise<{ g: Gateway; w: TestWorld }> {
  const w = testWorld();
  const config = worldConfig(w, {
    DATALAB_MQTT_ENABLED: "false",
    // Nobody listens there: readings stay in the outbox to be checked.
    DATALAB_NATS_URL: `nats://127.0.0.1:${await freePort()}`,
    DATALAB_SHUTDOWN_DRAIN_MS: "0",
    DATALAB_COMMIT_INTERVAL_MS: "20",
    ...env,
  });
  const logger = silentLogger();
  const metrics = createGatewayMetrics(false);
  const sources = source
    ? [
        (ingest: Ingest) =>
          new Rtl433ProcessSource({ ...source, metrics: codecMetrics(metrics.registry), logger }, ingest),
      ]
    : [];
  const g = new Gateway(config, { logger, metrics, sources });
  cleanup.push(async () => {
    await g.stop();
    rmSync(w.dataDir, { recursive: true, force: true });
  });
  await g.start();
  return { g, w };
}

describe("rtl_433 child process", () => {
  it(
    "a stand-in command that prints the fixture lines and exits: every event " +
      "becomes readings, and it is restarted with a doubling delay",
    async () => {
      const { g } = await gatewayWith({}, { command: ["cat", FIXTURE], restartMinMs: 50, restartMaxMs: 200 });
      const status = await waitFor(() => {
        const s = rtlStatus(g);
        return s.starts >= 4 && s.lastRestartDelayMs === 200 ? s : undefined;
      }, "four runs of the stand-in");
      expect(status.lastExit?.code).toBe(0);
      // Each complete run adds the fixture's readings; the run in progress may be partway.
      const completed = status.starts - 1;
      const readings = await waitFor(() => {
        const r = outboxReadings(g);
        return r.length >= completed * FIXTURE_READINGS ? r : undefined;
      }, "the readings of the finished runs");
      expect(new Set(readings.map((r) => r.source))).toEqual(new Set(["rtl433:cat"]));
      expect(readings.find((r) => r.sensorId === "rtl433-Nexus-TH-3-201" && r.metric === "temperature")?.value).toBe(
        29.4,
      );
      expect(rtlStatus(g).frames.rejected).toBe(0);
      expect(g.outbox.quarantined().length).toBe(0);
    },
  );

  it("garbage on stdout is quarantined with the codec's reason and counted by protocol", async () => {
    const script = `printf '%s\\n' 'rtl_433 says hello' '{"id": 5, "temperature_C": 20}' '${FIXTURE_EVENTS[0]}'`;
    const { g } = await gatewayWith({}, { command: ["sh", "-c", script], restartMinMs: 600_000 });
    await waitFor(() => g.outbox.quarantined().length === 2, "two quarantined lines");
    expect(
      g.outbox
        .quarantined()
        .map((q) => [q.reason, q.source])
        .sort(),
    ).toEqual([
      ["missing_field", "rtl433:sh"],
      ["not_json", "rtl433:sh"],
    ]);
    await waitFor(() => outboxReadings(g).length === 3, "the one good event's readings");
    expect(
      await scrape(g.httpPort, "datalab_gateway_frames_rejected_total", { protocol: "rtl433", reason: "not_json" }),
    ).toBe(1);
    expect(
      await scrape(g.httpPort, "datalab_gateway_frames_rejected_total", {
        protocol: "rtl433",
        reason: "missing_field",
      }),
    ).toBe(1);
  });

  it("a command that is not installed is reported in the status; the gateway keeps running", async () => {
    const { g } = await gatewayWith({}, { command: ["datalab-no-such-rtl_433", "-F", "json"], restartMinMs: 100 });
    const s = await waitFor(() => {
      const st = rtlStatus(g);
      return st.lastError ? st : undefined;
    }, "the failure in the status");
    expect(s.lastError).toMatch(/not found.*apt-get install rtl-433/);
    expect(s.state).toBe("disconnected");
    await waitFor(() => rtlStatus(g).starts >= 2, "another attempt after the delay");
  });

  it.skipIf(!HAS_RTL433)(
    "the real rtl_433 (needs rtl_433: apt-get install rtl-433) decodes " +
      "test bits given with -y, run from DATALAB_RTL433_CMD",
    async () => {
      const { g } = await gatewayWith({ DATALAB_RTL433_CMD: `rtl_433 -R 19 -F json -y "${NEXUS_BITS}"` });
      const readings = await waitFor(() => {
        const r = outboxReadings(g).filter((x) => x.sensorId === "rtl433-Nexus-TH-3-201");
        return r.length >= 3 ? r : undefined;
      }, "the Nexus-TH readings from rtl_433");
      expect(Object.fromEntries(readings.slice(0, 3).map((r) => [r.metric, r.value]))).toEqual({
        temperature: 29.4,
        humidity: 30,
        battery_ok: 1,
      });
      expect(readings[0]!.source).toBe("rtl433:rtl_433");
      expect(rtlStatus(g).command).toEqual(["rtl_433", "-R", "19", "-F", "json", "-y", NEXUS_BITS]);
      // -y decodes and exits: the source starts it again.
      await waitFor(() => rtlStatus(g).starts >= 2, "a restart after rtl_433 exits");
    },
  );
});

describe("rtl_433 events over MQTT (the same codec)", () => {
  let client: MqttClient;
  beforeAll(async () => {
    client = await mqttClient();
  });
  afterAll(async () => {
    await client.endAsync();
  });

  it("fixture events become readings; bad events are quarantined with the reason", async () => {
    const { g, w } = await gatewayWith({ DATALAB_MQTT_ENABLED: "true" });
    await waitFor(
      () => g.status().sources.find((s) => s.name === "mqtt")?.state === "connected",
      "the MQTT source to connect",
    );
    const topic = `${w.id}/rtl_433/pi-garden/events`;
    for (const line of FIXTURE_EVENTS) await client.publishAsync(topic, line, { qos: 1 });
    await client.publishAsync(topic, "{'model': 'Nexus-TH'}", { qos: 1 });
    await client.publishAsync(topic, '{"id": 7, "temperature_C": 21}', { qos: 1 });
    await client.publishAsync(topic, '{"model": "Generic-Doorbell", "id": 12, "button": 1}', { qos: 1 });

    await waitFor(() => outboxReadings(g).length === FIXTURE_READINGS, "every fixture reading");
    await waitFor(() => g.outbox.quarantined().length === 3, "three quarantined events");
    expect(
      g.outbox
        .quarantined()
        .map((q) => q.reason)
        .sort(),
    ).toEqual(["missing_field", "no_metrics", "not_json"]);
    expect(new Set(outboxReadings(g).map((r) => r.source))).toEqual(new Set([`mqtt:${topic}`]));
  });

  it("the MQTT decoder reads every fixture event, current and legacy style", () => {
    const legacy = readFileSync(LEGACY_FIXTURE, "utf8").split("\n").filter(Boolean);
    let n = 0;
    const rtl433Decoder = messageDecoder("rtl433");
    for (const line of [...FIXTURE_EVENTS, ...legacy]) n += rtl433Decoder(Buffer.from(line), {}).length;
    expect(n).toBe(FIXTURE_READINGS + 16);
  });
});
