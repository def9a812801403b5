import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { freePort, MQTT_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import { createParser } from "../../src/protocols/index";
import {
  createSerialEncoder,
  MqttEncoder,
  MqttOutput,
  openSerialOutput,
  OutputError,
  parseOutputSpec,
  publishSimulation,
  runSimulation,
  sampleToMessage,
  Simulator,
} from "../../src/index";
import { openReader, startPtyPair, type PtyPair } from "./processes";

const START = Date.UTC(2026, 0, 1);

describe("--out specs", () => {
  it("reads mqtt, stdout[:PROTOCOL] and serial:PATH[@BAUD]:PROTOCOL, with colons in the path", () => {
    expect(parseOutputSpec("mqtt")).toEqual({ kind: "mqtt" });
    expect(parseOutputSpec("stdout")).toEqual({ kind: "stdout", protocol: "jsonl" });
    expect(parseOutputSpec("stdout:xbee2")).toEqual({ kind: "stdout", protocol: "xbee2" });
    expect(parseOutputSpec("serial:/dev/ttyUSB0:mysensors")).toEqual({
      kind: "serial",
      path: "/dev/ttyUSB0",
      baudRate: 115_200,
      protocol: "mysensors",
    });
    expect(parseOutputSpec("serial:/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0@9600:xbee")).toEqual({
      kind: "serial",
      path: "/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0",
      baudRate: 9600,
      protocol: "xbee",
    });
    expect(parseOutputSpec("serial:/dev/ttyUSB0:zigbee")).toEqual({
      problem: expect.stringMatching(/unknown protocol "zigbee": expected one of jsonl, mysensors/),
    });
    expect(parseOutputSpec("serial:/dev/ttyUSB0@12:jsonl")).toEqual({ problem: expect.stringMatching(/baud rate 12/) });
    expect(parseOutputSpec("kafka")).toHaveProperty("problem");
  });
});

describe("MQTT output against the real Mosquitto", () => {
  const id = uniqueId("simout");

  it("publishes every simulated message, byte for byte what the encoder made, at QoS 1", async () => {
    const topicRoot = `${id}/sensors`;
    const sub = await mqtt.connectAsync(MQTT_URL);
    const got: { topic: string; payload: Buffer }[] = [];
    sub.on("message", (topic, payload) => got.push({ topic, payload }));
    await sub.subscribeAsync(`${topicRoot}/#`, { qos: 1 });
    const opts = { sensors: 5, rate: 100, seed: id, startTs: START, malformedRate: 0.1, duplicateRate: 0.05 };
    // Under Mosquitto's default max_queued_messages (1000 per subscriber), so a subscriber that
    // lags behind this same process's publisher is never dropped from.
    const cycles = await publishSimulation({
      ...opts,
      mqttUrl: MQTT_URL,
      format: "multi",
      topicRoot,
      count: 600,
      qos: 1,
      speed: "max",
    });
    expect(cycles).toBe(600);
    // Regenerate the same stream in memory: the broker must have delivered exactly it.
    const memory: { topic: string; payload: Buffer }[] = [];
    await runSimulation({ ...opts, count: 600, speed: "max" }, new MqttEncoder("multi", topicRoot), {
      description: "memory",
      send: (m) => void memory.push(m),
      close: async () => undefined,
    });
    await waitFor(() => got.length >= memory.length, `${memory.length} messages at the subscriber`);
    await sub.endAsync();
    expect(got.length).toBe(memory.length);
    expect(got.map((m) => `${m.topic} ${m.payload.toString("hex")}`).sort()).toEqual(
      memory.map((m) => `${m.topic} ${m.payload.toString("hex")}`).sort(),
    );
  });

  it("keeps at most `window` publishes in flight, so memory stays bounded whatever the rate", async () => {
    const out = await MqttOutput.connect({ url: MQTT_URL, qos: 1, window: 8 });
    let maxInflight = 0;
    let waits = 0;
    const enc = new MqttEncoder("multi", `${id}/window`);
    const sim = new Simulator({ sensors: 2, rate: 1, seed: 1, startTs: START });
    for (let i = 0; i < 100; i++) {
      const full = out.send(enc.encode(sampleToMessage(sim.next(), sim.kinds))[0]!);
      maxInflight = Math.max(maxInflight, out.inflight);
      if (full) {
        waits += 1;
        await full;
      }
    }
    await out.close();
    expect(maxInflight).toBe(8);
    expect(waits).toBeGreaterThan(0);
    expect(out.inflight).toBe(0);
  });

  it("fails with a message naming the broker and DATALAB_MQTT_URL when nothing listens", async () => {
    const url = `mqtt://127.0.0.1:${await freePort()}`;
    const err = await MqttOutput.connect({ url, qos: 1, connectTimeoutMs: 1_500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputError);
    expect((err as Error).message).toMatch(new RegExp(`cannot reach the MQTT broker at ${url}.*DATALAB_MQTT_URL`));
  });
});

describe("serial output through a real pty pair (socat)", () => {
  let pty: PtyPair;
  beforeAll(async () => {
    pty = await startPtyPair();
  });
  afterAll(async () => {
    await pty?.stop();
  });

  it("writes MySensors lines that arrive whole on the other end and decode to the simulated values", async () => {
    const reader = await openReader(pty.b);
    const out = await openSerialOutput(pty.a, 115_200);
    const opts = {
      sensors: 3,
      rate: 1000,
      seed: "serial",
      startTs: START,
      kinds: ["temperature", "humidity", "battery"] as const,
      count: 300,
      speed: "max" as const,
    };
    const stats = await runSimulation(opts, createSerialEncoder("mysensors"), out);
    await out.close();
    expect(stats.sent).toBe(300);
    // 3 nodes × (2 + 3 presentation lines) + 300 × 3 values.
    const lines = 3 * 5 + 300 * 3;
    await waitFor(() => reader.received().toString().split("\n").length > lines, `${lines} lines from the pty`);
    await reader.close();
    const readings = createParser("mysensors")
      .push(reader.received())
      .flatMap((o) => (o.kind === "readings" ? o.readings : []));
    const sim = new Simulator(opts);
    const expected = Array.from({ length: 300 }, () => sim.next()).flatMap((s) => [
      `mys-${s.sensorId.slice(4)}-0 temperature ${s.temperature}`,
      `mys-${s.sensorId.slice(4)}-1 humidity ${s.humidity}`,
      `mys-${s.sensorId.slice(4)}-4 voltage ${s.battery}`,
    ]);
    expect(readings.map((r) => `${r.sensorId} ${r.metric} ${r.value}`)).toEqual(expected);
  });

  it("reports a port that cannot be opened by its path", async () => {
    const err = await openSerialOutput(`${pty.a}-missing`, 9600).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputError);
    expect((err as Error).message).toMatch(/cannot open serial port .*a-missing/);
  });
});
