/**
 * One contract for every Source (sources/common/types.ts), run against each kind as the
 * gateway builds it (its own factory, from config): MQTT on the shared Mosquitto, a serial
 * radio on a real pty pair (socat), rtl_433 through a stand-in command (`tail -F` of a file
 * the test writes events to). Each source hands its input to a real Gateway's ingest, so
 * readings and quarantine rows are read back from the outbox.
 */
import { appendFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistry, silentLogger } from "@datalab/shared";
import { freePort, tempDir, waitFor } from "@datalab/shared/testing";
import { loadGatewayConfig } from "../src/config";
import { Gateway } from "../src/gateway";
import type { Ingest } from "../src/ingest/index";
import { codecMetrics } from "../src/metrics/index";
import type { Source } from "../src/sources/common/types";
import { createMqttSources } from "../src/sources/mqtt/create";
import { createRtl433Sources } from "../src/sources/rtl433/create";
import { createSerialSources } from "../src/sources/serial/create";
import { mqttClient, testWorld, worldConfig } from "./support/gateway";
import { wireMessagesIn } from "./support/outbox";
import { NodeEnd, PtyPair, requireSocat } from "./serial-pty";

/** A source of one kind with its input under the test's control. */
interface Rig {
  source: Source;
  /** Sends one message with a reading of `value` from sensor `sensor`. */
  good(sensor: string, value: number): Promise<void>;
  /** Sends one message the source's format cannot read. */
  bad(): Promise<void>;
  close(): Promise<void>;
}

interface Kind {
  kind: string;
  /** The sensor id a good message's readings carry. */
  sensorId(sensor: string): string;
  badReason: string;
  rig(ingest: Ingest, env: Record<string, string>): Promise<Rig>;
  /** The source with its input missing: no broker there, no device, no such command. */
  unavailable(ingest: Ingest, env: Record<string, string>): Promise<Source>;
}

const configOf = (env: Record<string, string>, more: Record<string, string>) =>
  loadGatewayConfig({ env: { ...env, ...more } });
const registry = () => createRegistry("contract", false);
const logger = silentLogger();

const mqtt: Kind = {
  kind: "mqtt",
  sensorId: (s) => s,
  badReason: "not_json",
  async rig(ingest, env) {
    const config = configOf(env, { DATALAB_MQTT_ENABLED: "true", DATALAB_MQTT_PERSISTENT: "false" });
    const [source] = createMqttSources(config, { ingest, registry: registry(), logger, units: config.units });
    const client: MqttClient = await mqttClient();
    const topic = (s: string) => `${config.mqttTopics[0]!.replace("/#", "")}/${s}`;
    return {
      source: source!,
      good: async (s, v) => void (await client.publishAsync(topic(s), `{"sensor":"${s}","value":${v}}`, { qos: 1 })),
      bad: async () => void (await client.publishAsync(topic("bad"), "{'name': 'sensor1'}", { qos: 1 })),
      close: () => client.endAsync(),
    };
  },
  async unavailable(ingest, env) {
    const config = configOf(env, {
      DATALAB_MQTT_ENABLED: "true",
      DATALAB_MQTT_URL: `mqtt://127.0.0.1:${await freePort()}`,
    });
    return createMqttSources(config, { ingest, registry: registry(), logger, units: config.units })[0]!;
  },
};

const serial: Kind = {
  kind: "serial",
  sensorId: (s) => s,
  badReason: "not_json",
  async rig(ingest, env) {
    requireSocat();
    const dir = tempDir("datalab-contract-");
    const pty = new PtyPair(dir, "radio");
    await pty.plug();
    const node = await NodeEnd.open(pty.node);
    const config = configOf(env, { DATALAB_SERIAL_PORTS: `${pty.radio}:jsonl` });
    const [source] = createSerialSources(config, {
      ingest,
      metrics: codecMetrics(registry()),
      logger,
      units: config.units,
    });
    return {
      source: source!,
      good: (s, v) => node.write(`{"sensor":"${s}","value":${v}}\n`),
      bad: () => node.write("{'name': 'sensor1'}\n"),
      close: async () => {
        await node.close();
        await pty.unplug();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async unavailable(ingest, env) {
    const absent = join(tempDir("datalab-contract-"), "by-id", "usb-not-plugged-in");
    const config = configOf(env, { DATALAB_SERIAL_PORTS: `${absent}:jsonl` });
    return createSerialSources(config, { ingest, metrics: codecMetrics(registry()), logger, units: config.units })[0]!;
  },
};

const rtl433: Kind = {
  kind: "rtl433",
  sensorId: (s) => `rtl433-Nexus-TH-1-${s}`,
  badReason: "not_json",
  async rig(ingest, env) {
    const dir = tempDir("datalab-contract-");
    const events = join(dir, "events.jsonl");
    writeFileSync(events, "");
    const config = configOf(env, { DATALAB_RTL433_CMD: `tail -n +1 -F ${events}` });
    const [source] = createRtl433Sources(config, {
      ingest,
      metrics: codecMetrics(registry()),
      logger,
      units: config.units,
    });
    const event = (s: string, v: number) => `{"model":"Nexus-TH","id":${s},"channel":1,"temperature_C":${v}}\n`;
    return {
      source: source!,
      good: async (s, v) => appendFileSync(events, event(s, v)),
      bad: async () => appendFileSync(events, "rtl_433 says hello\n"),
      close: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  async unavailable(ingest, env) {
    const config = configOf(env, { DATALAB_RTL433_CMD: "datalab-no-such-rtl_433 -F json" });
    return createRtl433Sources(config, { ingest, metrics: codecMetrics(registry()), logger, units: config.units })[0]!;
  },
};

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A gateway with no source of its own: its ingest, commit and outbox take what the source under test hands on. */
async function gateway(): Promise<{ g: Gateway; env: Record<string, string> }> {
  const w = testWorld();
  const env = {
    ...w.env,
    DATALAB_MQTT_ENABLED: "false",
    // Nobody listens there: readings stay in the outbox to be checked.
    DATALAB_NATS_URL: `nats://127.0.0.1:${await freePort()}`,
    DATALAB_SHUTDOWN_DRAIN_MS: "0",
    DATALAB_COMMIT_INTERVAL_MS: "20",
  };
  const g = new Gateway(worldConfig(w, env), { logger });
  await g.start();
  cleanup.push(async () => {
    await g.stop();
    rmSync(w.dataDir, { recursive: true, force: true });
  });
  return { g, env };
}

function readingsOf(g: Gateway): { source: string; sensorId: string; value: number }[] {
  return wireMessagesIn(g.outbox).flatMap((m) =>
    m.readings.map((r) => ({ source: m.source, sensorId: r.sensorId, value: r.value })),
  );
}

/** The part before the first colon: `mqtt`, `serial`, `rtl433`. */
const kindOf = (name: string) => name.split(":")[0];

describe.each([mqtt, serial, rtl433])("the Source contract: $kind", (k) => {
  async function started(): Promise<{ g: Gateway; rig: Rig }> {
    const { g, env } = await gateway();
    const rig = await k.rig(g.ingest, env);
    cleanup.push(async () => {
      await rig.source.stop();
      await rig.close();
    });
    expect(rig.source.status()).toMatchObject({ name: rig.source.name, state: "starting" });
    await rig.source.start();
    await waitFor(() => rig.source.status().state === "connected", `the ${k.kind} source to connect`);
    return { g, rig };
  }

  it("is named by its kind, says it is starting until it starts, then connects", async () => {
    const { rig } = await started();
    expect(kindOf(rig.source.name)).toBe(k.kind);
    const st = rig.source.status();
    expect(st.name).toBe(rig.source.name);
    expect(st.lastError).toBeUndefined();
  });

  it("a message becomes readings through ingest, stored under the source's kind", async () => {
    const { g, rig } = await started();
    await rig.good("701", 21.5);
    const stored = await waitFor(() => {
      const r = readingsOf(g).filter((x) => x.sensorId === k.sensorId("701"));
      return r.length > 0 ? r : undefined;
    }, "the reading in the outbox");
    expect(stored.map((r) => r.value)).toEqual([21.5]);
    expect(kindOf(stored[0]!.source)).toBe(k.kind);
  });

  it("a bad message becomes a quarantine row with its reason; the source reads on", async () => {
    const { g, rig } = await started();
    await rig.bad();
    const row = await waitFor(() => g.outbox.quarantined()[0], "the quarantine row");
    expect(row.reason).toBe(k.badReason);
    expect(kindOf(row.source)).toBe(k.kind);
    expect(row.payload.length).toBeGreaterThan(0);
    expect(rig.source.status().state).toBe("connected");
    await rig.good("702", 7);
    await waitFor(() => readingsOf(g).some((x) => x.sensorId === k.sensorId("702")), "the next good message");
  });

  it("stop is clean and idempotent: stopped, status still data, nothing read after it", async () => {
    const { g, rig } = await started();
    await rig.good("703", 1);
    await waitFor(() => readingsOf(g).some((x) => x.sensorId === k.sensorId("703")), "a reading before the stop");
    await rig.source.stop();
    await rig.source.stop();
    const st = rig.source.status();
    expect(st.state).toBe("stopped");
    expect(JSON.parse(JSON.stringify(st))).toMatchObject({ name: rig.source.name, state: "stopped" });
    // Absence can only be waited for: a stopped source must not hand on what comes later.
    await rig.good("704", 2).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(readingsOf(g).some((x) => x.sensorId === k.sensorId("704"))).toBe(false);
  });

  it("a missing input is a status, not an exception: start resolves, disconnected with the reason", async () => {
    const { g, env } = await gateway();
    const source = await k.unavailable(g.ingest, env);
    // Stopping what never started is harmless too.
    await source.stop();
    const again = await k.unavailable(g.ingest, env);
    cleanup.push(() => again.stop());
    await again.start();
    const st = await waitFor(() => {
      const s = again.status();
      return s.state === "disconnected" && s.lastError ? s : undefined;
    }, "the missing input in the status");
    expect(st.name).toBe(again.name);
    expect(st.lastError).toMatch(/\S/);
    await again.stop();
    expect(again.status().state).toBe("stopped");
  });
});

/** The broker's drop count is shaped as a source for its lifecycle only: it never hands on readings. */
describe("the Source contract, lifecycle part: the MQTT broker's drop count", () => {
  async function monitor(url?: string): Promise<Source> {
    const { g, env } = await gateway();
    const more: Record<string, string> = { DATALAB_MQTT_ENABLED: "true", ...(url ? { DATALAB_MQTT_URL: url } : {}) };
    const config = configOf(env, more);
    const source = createMqttSources(config, {
      ingest: g.ingest,
      registry: registry(),
      logger,
      units: config.units,
    })[1]!;
    cleanup.push(() => source.stop());
    return source;
  }

  it("starts, connects, and stops cleanly twice", async () => {
    const source = await monitor();
    expect(source.status()).toMatchObject({ name: source.name, state: "starting" });
    await source.start();
    await waitFor(() => source.status().state === "connected", "the monitor to connect");
    await source.stop();
    await source.stop();
    expect(source.status().state).toBe("stopped");
  });

  it("a broker that is not there is a status: disconnected with the reason", async () => {
    const source = await monitor(`mqtt://127.0.0.1:${await freePort()}`);
    await source.start();
    await waitFor(() => {
      const s = source.status();
      return s.state === "disconnected" && s.lastError ? s : undefined;
    }, "the missing broker in the status");
  });
});
