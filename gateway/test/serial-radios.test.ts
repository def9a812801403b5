/**
 * Radios over real serial ports (pty pairs from socat): a simulated MySensors node and a
 * simulated XBee coordinator write frames made by the codecs' encoders; a real Gateway reads
 * them from its configured ports (DATALAB_SERIAL_PORTS) and turns them into readings in its
 * outbox. NATS points at a closed port, so the readings stay in the outbox to be looked at.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { freePort, tempDir, waitFor } from "@datalab/shared/testing";
import {
  encodeMySensors,
  encodeMySensorsSet,
  encodeXBee,
  MYS_SENSOR_TYPE_NAMES,
  MysCommand,
  MysInternal,
  MysSensorType,
  MysVariable,
} from "@datalab/sensors";
import { Gateway } from "../src/gateway";
import type { SerialSourceStatus } from "../src/sources/serial/source";
import { scrape, testWorld, worldConfig, type TestWorld } from "./support/gateway";
import { NodeEnd, PtyPair, requireSocat } from "./serial-pty";
import { wireMessagesIn } from "./support/outbox";

interface StoredReading {
  sensorId: string;
  metric: string;
  value: number;
  unit: string | null;
  source: string;
}

function outboxReadings(g: Gateway): StoredReading[] {
  return wireMessagesIn(g.outbox).flatMap((wire) =>
    wire.readings.map((r) => ({ ...(r as Omit<StoredReading, "source">), source: wire.source })),
  );
}

function serialStatus(g: Gateway, protocol: string): SerialSourceStatus {
  const s = g.status().sources.find((x) => x.name.startsWith("serial:") && x.name.endsWith(`:${protocol}`));
  if (!s) throw new Error(`no ${protocol} source in the status`);
  return s as SerialSourceStatus;
}

const XBEE_ADDRESS = "0013a20040522baa";
// TMP36 on AD0 of an XBee Series 2: 1.2 V over 1023 counts, 10 mV/°C, 500 mV at 0 °C.
const XBEE_PINS = JSON.stringify({ AD0: { metric: "temperature", unit: "Cel", scale: 0.1173, offset: -50 } });

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function startGateway(w: TestWorld, ports: string, env: Record<string, string> = {}): Promise<Gateway> {
  const g = new Gateway(
    worldConfig(w, {
      DATALAB_MQTT_ENABLED: "false",
      // Nobody listens there: forwarding waits, and the readings stay in the outbox to be checked.
      DATALAB_NATS_URL: `nats://127.0.0.1:${await freePort()}`,
      DATALAB_SHUTDOWN_DRAIN_MS: "0",
      DATALAB_COMMIT_INTERVAL_MS: "20",
      DATALAB_SERIAL_PORTS: ports,
      ...env,
    }),
    { logger: silentLogger() },
  );
  await g.start();
  return g;
}

describe("serial radios over pty pairs (needs socat)", () => {
  let dir: string;
  let w: TestWorld;
  let g: Gateway;
  let mysPty: PtyPair;
  let xbeePty: PtyPair;
  let mysNode: NodeEnd;
  let xbeeNode: NodeEnd;

  beforeAll(async () => {
    requireSocat();
    dir = tempDir("datalab-pty-");
    mysPty = new PtyPair(dir, "mys");
    xbeePty = new PtyPair(dir, "xbee");
    await mysPty.plug();
    await xbeePty.plug();
    w = testWorld();
    g = await startGateway(w, `${mysPty.radio}:mysensors,${xbeePty.radio}:xbee`, { DATALAB_XBEE_PINS: XBEE_PINS });
    cleanup.push(async () => {
      await mysNode?.close();
      await xbeeNode?.close();
      await g.stop();
      await mysPty.unplug();
      await xbeePty.unplug();
      rmSync(dir, { recursive: true, force: true });
      rmSync(w.dataDir, { recursive: true, force: true });
    });
    await waitFor(
      () => serialStatus(g, "mysensors").state === "connected" && serialStatus(g, "xbee").state === "connected",
      "both ports to open",
    );
    mysNode = await NodeEnd.open(mysPty.node);
    xbeeNode = await NodeEnd.open(xbeePty.node);
  });

  it("a MySensors node gets its id on the wire, presents itself, and its readings reach the outbox", async () => {
    // A new node asks for an id from the 255 address; the controller answers on the same port.
    await mysNode.write(
      encodeMySensors({
        nodeId: 255,
        childId: 255,
        command: MysCommand.INTERNAL,
        ack: 0,
        type: MysInternal.ID_REQUEST,
        payload: "",
      }),
    );
    const reply = await waitFor(
      () => mysNode.lines().find((l) => l.startsWith("255;255;3;0;4;")),
      "the ID response on the node's end",
    );
    expect(reply).toBe("255;255;3;0;4;1");
    const id = Number(reply.split(";")[5]);

    await mysNode.write(
      Buffer.concat([
        encodeMySensors({
          nodeId: id,
          childId: 255,
          command: MysCommand.PRESENTATION,
          ack: 0,
          type: MysSensorType.ARDUINO_NODE,
          payload: "2.3.2",
        }),
        encodeMySensors({
          nodeId: id,
          childId: 255,
          command: MysCommand.INTERNAL,
          ack: 0,
          type: MysInternal.SKETCH_NAME,
          payload: "Kitchen",
        }),
        encodeMySensors({
          nodeId: id,
          childId: 0,
          command: MysCommand.PRESENTATION,
          ack: 0,
          type: MYS_SENSOR_TYPE_NAMES.indexOf("S_TEMP"),
          payload: "air",
        }),
        encodeMySensorsSet(id, 0, MysVariable.TEMP, "21.5"),
        encodeMySensorsSet(id, 0, MysVariable.TEMP, "21.75"),
      ]),
    );
    // The node asks for the time and the unit system: answered too.
    await mysNode.write(
      encodeMySensors({
        nodeId: id,
        childId: 255,
        command: MysCommand.INTERNAL,
        ack: 0,
        type: MysInternal.TIME,
        payload: "",
      }),
    );
    await mysNode.write(
      encodeMySensors({
        nodeId: id,
        childId: 255,
        command: MysCommand.INTERNAL,
        ack: 0,
        type: MysInternal.CONFIG,
        payload: "0",
      }),
    );

    const readings = await waitFor(() => {
      const r = outboxReadings(g).filter((x) => x.sensorId === `mys-${id}-0`);
      return r.length === 2 ? r : undefined;
    }, "two MySensors readings in the outbox");
    expect(readings.map((r) => [r.metric, r.value, r.unit])).toEqual([
      ["temperature", 21.5, "Cel"],
      ["temperature", 21.75, "Cel"],
    ]);
    expect(readings[0]!.source).toBe(`serial:${mysPty.radio}:mysensors`);

    const timeReply = await waitFor(
      () => mysNode.lines().find((l) => l.startsWith(`${id};255;3;0;1;`)),
      "the I_TIME answer",
    );
    expect(Math.abs(Number(timeReply.split(";")[5]) - Date.now() / 1000)).toBeLessThan(60);
    expect(
      await waitFor(() => mysNode.lines().find((l) => l.startsWith(`${id};255;3;0;6;`)), "the I_CONFIG answer"),
    ).toBe(`${id};255;3;0;6;M`);

    // Presentations are remembered as metadata, and shown in the gateway's status.
    const node = await waitFor(
      () => serialStatus(g, "mysensors").mysensors?.nodes.find((n) => n.nodeId === id),
      "the node in the status",
    );
    expect(node.sketchName).toBe("Kitchen");
    expect(node.libraryVersion).toBe("2.3.2");
    expect(node.children["0"]).toMatchObject({ typeName: "S_TEMP", description: "air" });
  });

  it(
    "while node 46 keeps sending without presenting, new nodes " +
      "asking for ids one after another are never given 46",
    async () => {
      const idRequest = encodeMySensors({
        nodeId: 255,
        childId: 255,
        command: MysCommand.INTERNAL,
        ack: 0,
        type: MysInternal.ID_REQUEST,
        payload: "",
      });
      const given: number[] = [];
      const responses = (): string[] => mysNode.lines().filter((l) => l.startsWith("255;255;3;0;4;"));
      const before = responses().length;
      // Until the ids handed out have gone past 46, bounded: 1..45 plus a few are at most ~50 rounds.
      for (let round = 0; round < 60 && !given.some((id) => id > 46); round++) {
        await mysNode.write("46;1;1;0;0;21.5\n");
        await mysNode.write(idRequest);
        const reply = await waitFor(() => responses()[before + round], `ID response ${round + 1}`);
        given.push(Number(reply.split(";")[5]));
      }
      expect(given.some((id) => id > 46)).toBe(true);
      expect(given).not.toContain(46);
      expect(new Set(given).size).toBe(given.length);
      // Node 46 is in the controller's memory as a node heard, never assigned.
      const node46 = serialStatus(g, "mysensors").mysensors?.nodes.find((n) => n.nodeId === 46);
      expect(node46).toMatchObject({ nodeId: 46 });
      expect(node46?.assignedAt).toBeUndefined();
      await waitFor(
        () => outboxReadings(g).filter((r) => r.sensorId === "mys-46-1").length === given.length,
        "every reading of node 46 in the outbox",
      );
    },
  );

  it("an XBee coordinator's I/O sample (scaled by xbeePins) and text packet reach the outbox", async () => {
    await xbeeNode.write(
      Buffer.concat([
        encodeXBee({ type: 0x92, source64: XBEE_ADDRESS, analog: { AD0: 600 } }),
        encodeXBee({ type: 0x90, source64: "0013a20040522bab", data: "temperature=19.5,humidity=40" }),
      ]),
    );
    const readings = await waitFor(() => {
      const r = outboxReadings(g).filter((x) => x.sensorId.startsWith("xbee-"));
      return r.length === 3 ? r : undefined;
    }, "three XBee readings in the outbox");
    const sample = readings.find((r) => r.sensorId === `xbee-${XBEE_ADDRESS}`)!;
    expect(sample.metric).toBe("temperature");
    expect(sample.value).toBeCloseTo(600 * 0.1173 - 50, 6);
    expect(sample.unit).toBe("Cel");
    expect(readings.filter((r) => r.sensorId === "xbee-0013a20040522bab").map((r) => [r.metric, r.value])).toEqual([
      ["temperature", 19.5],
      ["humidity", 40],
    ]);
    expect(serialStatus(g, "xbee").frames.readings).toBeGreaterThanOrEqual(2);
  });

  it("bad frames are quarantined with the codec's reason and counted by protocol", async () => {
    const good = encodeXBee({ type: 0x92, source64: XBEE_ADDRESS, analog: { AD0: 610 } });
    const badChecksum = Buffer.from(good);
    badChecksum[badChecksum.length - 1]! ^= 0xff;
    await xbeeNode.write(badChecksum);
    // MySensors: a command number that does not exist, then a V_ type that does not.
    await mysNode.write("1;0;9;0;0;1\n1;0;1;0;99;5\n");
    // API mode 1: a frame cut short, then silence. The idle flush reports it as truncated.
    await xbeeNode.write(good.subarray(0, 7));

    const byReason = (reason: string, protocol: string) =>
      g.outbox
        .quarantined(1000)
        .filter(
          (q) =>
            q.reason === reason &&
            q.source === `serial:${protocol === "xbee" ? xbeePty.radio : mysPty.radio}:${protocol}`,
        );
    await waitFor(() => byReason("bad_checksum", "xbee").length === 1, "the bad checksum in the quarantine");
    await waitFor(
      () => byReason("unknown_message_type", "mysensors").length === 2,
      "both unknown MySensors types in the quarantine",
    );
    await waitFor(() => byReason("truncated_frame", "xbee").length === 1, "the truncated XBee frame in the quarantine");

    const [checksum] = byReason("bad_checksum", "xbee");
    expect(Buffer.compare(checksum!.payload, badChecksum)).toBe(0);
    expect(checksum!.detail).toMatch(/^xbee frame: .*checksum/i);
    expect(
      byReason("unknown_message_type", "mysensors")
        .map((q) => q.payload.toString())
        .sort(),
    ).toEqual(["1;0;1;0;99;5", "1;0;9;0;0;1"]);

    const port = g.httpPort;
    expect(
      await scrape(port, "datalab_gateway_frames_rejected_total", { protocol: "xbee", reason: "bad_checksum" }),
    ).toBe(1);
    expect(
      await scrape(port, "datalab_gateway_frames_rejected_total", { protocol: "xbee", reason: "truncated_frame" }),
    ).toBe(1);
    expect(
      await scrape(port, "datalab_gateway_frames_rejected_total", {
        protocol: "mysensors",
        reason: "unknown_message_type",
      }),
    ).toBe(2);
    expect(await scrape(port, "datalab_gateway_quarantined_total", { reason: "bad_checksum", source: "serial" })).toBe(
      1,
    );
    expect(serialStatus(g, "xbee").frames.rejectedBy).toEqual({ bad_checksum: 1, truncated_frame: 1 });
    // Valid traffic that is no measurement (the ID request, presentations) is only counted.
    expect(
      await scrape(port, "datalab_gateway_frames_ignored_total", { protocol: "mysensors", category: "presentation" }),
    ).toBe(2);

    // The line carries on after the bad frames.
    await xbeeNode.write(good);
    await waitFor(
      () =>
        outboxReadings(g).some(
          (r) => r.sensorId === `xbee-${XBEE_ADDRESS}` && Math.abs(r.value - (610 * 0.1173 - 50)) < 1e-6,
        ),
      "the next good frame",
    );
  });
});

describe("a radio unplugged and plugged back (needs socat)", () => {
  it("the port reopens by itself and readings resume; node ids survive a gateway restart", async () => {
    requireSocat();
    const dir = tempDir("datalab-pty-");
    const pty = new PtyPair(dir, "usb");
    const w = testWorld();
    let g: Gateway | undefined;
    let node: NodeEnd | undefined;
    cleanup.push(async () => {
      await node?.close();
      await g?.stop();
      await pty.unplug();
      rmSync(dir, { recursive: true, force: true });
      rmSync(w.dataDir, { recursive: true, force: true });
    });

    // The gateway starts before the radio is plugged in: it waits for the device.
    g = await startGateway(w, `${pty.radio}@57600:mysensors`);
    await waitFor(
      () => /waiting for .* to appear/.test(serialStatus(g!, "mysensors").lastError ?? ""),
      "the source to wait for the device",
    );
    expect(serialStatus(g, "mysensors").state).toBe("disconnected");

    await pty.plug();
    await waitFor(() => serialStatus(g!, "mysensors").state === "connected", "the port to open once it appears");
    node = await NodeEnd.open(pty.node);
    await node.write(encodeMySensorsSet(7, 1, MysVariable.HUM, 41));
    await waitFor(
      () => outboxReadings(g!).some((r) => r.sensorId === "mys-7-1" && r.value === 41),
      "the first reading",
    );

    // Unplug: both ends vanish.
    await node.close();
    await pty.unplug();
    await waitFor(() => serialStatus(g!, "mysensors").state === "disconnected", "the source to notice the unplug");
    expect(serialStatus(g, "mysensors").lastError).toMatch(/closed/);

    // Plug back in under the same name: a new pty behind the same link.
    await pty.plug();
    await waitFor(
      () => serialStatus(g!, "mysensors").state === "connected" && serialStatus(g!, "mysensors").opens === 2,
      "the port to reopen",
    );
    node = await NodeEnd.open(pty.node);
    await node.write(encodeMySensorsSet(7, 1, MysVariable.HUM, 42));
    await waitFor(
      () => outboxReadings(g!).some((r) => r.sensorId === "mys-7-1" && r.value === 42),
      "readings to resume after the replug",
    );
    expect(serialStatus(g, "mysensors").baudRate).toBe(57_600);

    // Node ids live in <dataDir>/mysensors.db: after a gateway restart the next id is new.
    const idRequest = encodeMySensors({
      nodeId: 255,
      childId: 255,
      command: MysCommand.INTERNAL,
      ack: 0,
      type: MysInternal.ID_REQUEST,
      payload: "",
    });
    await node.write(idRequest);
    await waitFor(() => node!.lines().includes("255;255;3;0;4;1"), "id 1 for the first new node");
    await g.stop();
    g = await startGateway(w, `${pty.radio}:mysensors`);
    await waitFor(() => serialStatus(g!, "mysensors").state === "connected", "the port to open after the restart");
    await node.write(idRequest);
    await waitFor(() => node!.lines().includes("255;255;3;0;4;2"), "id 2 after the restart (id 1 remembered)");
  });
});
