/**
 * The bundle's MQTT parser (src/sources/mqtt/framed-parse.ts) against mqtt-packet's own, the
 * one mqtt.js uses: the same streams of packets, cut at random places, give the same packets in
 * the same order, and the same errors. Streams mix plain PUBLISH packets (read by the framed
 * parser itself) with every other kind and with PUBLISH packets that carry MQTT 5 properties
 * (handed to mqtt-packet), small and large, over MQTT 3.1.1 and 5.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { FramedParser, frameParse, type MqttPacketModule } from "../src/sources/mqtt/framed-parse";

const mqttDir = dirname(createRequire(import.meta.url).resolve("mqtt/package.json"));
// The mqtt-packet mqtt.js itself loads.
const mqttPacket = createRequire(join(mqttDir, "package.json"))("mqtt-packet") as MqttPacketModule & {
  generate(packet: object, opts?: object): Buffer;
};

/** A small deterministic PRNG, so a failing stream can be rebuilt from its seed. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

const TOPICS = ["sensors/kitchen", "rtl_433/Acurite-606TX/1/temperature_C", "温度/居间", "a", "x/".repeat(200)];

function publish(r: (n: number) => number, v5: boolean): object {
  const qos = r(3);
  const sizes = [0, 1, 60, 127, 128, 300, 16_384, 20_000];
  const payload = Buffer.alloc(sizes[r(sizes.length)]!, r(256));
  const p: Record<string, unknown> = {
    cmd: "publish",
    topic: TOPICS[r(TOPICS.length)],
    payload,
    qos,
    retain: r(2) === 1,
    dup: qos > 0 && r(4) === 0,
  };
  if (qos > 0) p["messageId"] = 1 + r(65_535);
  if (v5 && r(4) === 0) {
    p["properties"] = [
      { payloadFormatIndicator: true },
      { messageExpiryInterval: 1 + r(1000), contentType: "application/json" },
      { userProperties: { site: "pi-1" } },
      { subscriptionIdentifier: 1 + r(100) },
    ][r(4)];
  }
  return p;
}

function other(r: (n: number) => number, v5: boolean): object {
  const id = 1 + r(65_535);
  const all: object[] = [
    { cmd: "puback", messageId: id, ...(v5 ? { reasonCode: 0 } : {}) },
    { cmd: "pubrec", messageId: id },
    { cmd: "pubrel", messageId: id },
    { cmd: "pubcomp", messageId: id },
    { cmd: "suback", messageId: id, granted: [0, 1] },
    { cmd: "unsuback", messageId: id, ...(v5 ? { granted: [0] } : {}) },
    { cmd: "pingresp" },
    { cmd: "connack", sessionPresent: r(2) === 1, ...(v5 ? { reasonCode: 0 } : { returnCode: 0 }) },
  ];
  return all[r(all.length)]!;
}

/** The bytes of `count` packets, most of them PUBLISH. */
function stream(seed: number, v5: boolean, count: number): Buffer {
  const r = rng(seed);
  const opts = { protocolVersion: v5 ? 5 : 4 };
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(mqttPacket.generate(r(5) === 0 ? other(r, v5) : publish(r, v5), opts));
  return Buffer.concat(out);
}

/** `data` in pieces of random sizes: single bytes, a few bytes, a slice, a whole socket read. */
function cut(data: Buffer, seed: number): Buffer[] {
  const r = rng(seed * 7919);
  const sizes = [1, 2, 3, 5, 17, 100, 4096, 65_536];
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const n = Math.min(data.length - at, sizes[r(sizes.length)]!);
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return pieces;
}

interface Seen {
  packets: unknown[];
  errors: string[];
}

function run(parser: FramedParser | ReturnType<MqttPacketModule["parser"]>, pieces: Buffer[]): Seen {
  const seen: Seen = { packets: [], errors: [] };
  // Payloads compared as text: an element-wise compare of large buffers is slow.
  parser.on("packet", (p: { payload?: unknown }) =>
    seen.packets.push(Buffer.isBuffer(p.payload) ? { ...p, payload: p.payload.toString("base64") } : p),
  );
  parser.on("error", (e: Error) => seen.errors.push(e.message));
  for (const piece of pieces) parser.parse(piece);
  return seen;
}

function both(pieces: Buffer[], v5: boolean): { framed: Seen; reference: Seen } {
  const opts = { protocolVersion: v5 ? 5 : 4 };
  return {
    framed: run(new FramedParser(mqttPacket, opts), pieces),
    reference: run(mqttPacket.parser(opts), pieces),
  };
}

describe("the framed MQTT parser, against mqtt-packet's", () => {
  for (const v5 of [false, true]) {
    it(`gives the same packets for random streams cut at random places (MQTT ${v5 ? 5 : "3.1.1"})`, () => {
      let packets = 0;
      for (let seed = 1; seed <= 60; seed++) {
        const { framed, reference } = both(cut(stream(seed, v5, 40), seed), v5);
        expect(reference.errors).toEqual([]);
        expect(framed.errors).toEqual([]);
        expect(framed.packets).toEqual(reference.packets);
        packets += reference.packets.length;
      }
      expect(packets).toBe(60 * 40);
    });
  }

  it("gives a flood's PUBLISH packets the fields mqtt-packet gives them", () => {
    const opts = { protocolVersion: 5 };
    const bytes = mqttPacket.generate(
      { cmd: "publish", topic: "sensors/s1", payload: Buffer.from('{"t":1}'), qos: 1, messageId: 7 },
      opts,
    );
    const { framed, reference } = both([bytes], true);
    expect(framed.packets).toEqual([
      {
        cmd: "publish",
        retain: false,
        qos: 1,
        dup: false,
        length: 22,
        topic: "sensors/s1",
        payload: Buffer.from('{"t":1}').toString("base64"),
        messageId: 7,
      },
    ]);
    expect(Object.keys(framed.packets[0]!)).toEqual(Object.keys(reference.packets[0]!));

    // Read by the framed parser itself (the point of it), where a PUBLISH with properties goes
    // to mqtt-packet: the parses mqtt-packet's parser is asked for are counted.
    let delegated = 0;
    const counting: MqttPacketModule = {
      parser: (o) => {
        const inner = mqttPacket.parser(o);
        const parse = inner.parse.bind(inner);
        inner.parse = (b: Buffer) => (delegated++, parse(b));
        return inner;
      },
    };
    expect(run(new FramedParser(counting, opts), [bytes]).packets).toEqual(framed.packets);
    expect(delegated).toBe(0);
    const withProperties = mqttPacket.generate(
      {
        cmd: "publish",
        topic: "sensors/s1",
        payload: Buffer.from("{}"),
        qos: 1,
        messageId: 8,
        properties: { contentType: "a" },
      },
      opts,
    );
    expect(run(new FramedParser(counting, opts), [withProperties]).packets).toEqual(
      both([withProperties], true).reference.packets,
    );
    expect(delegated).toBe(1);
  });

  const bad: [string, Buffer][] = [
    ["a PUBLISH with both QoS bits set", Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01])],
    ["a remaining length longer than four bytes", Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ["a PUBREL without its required flags", Buffer.from([0x60, 0x02, 0x00, 0x01])],
    ["a PUBLISH too short for its topic", Buffer.from([0x30, 0x03, 0x00, 0x09, 0x61])],
  ];
  for (const [what, bytes] of bad) {
    it(`refuses ${what} as mqtt-packet does, keeping what came before, and reads the next read afresh`, () => {
      const good = stream(99, true, 5);
      const read = Buffer.concat([good, bytes, good]);
      const first = both([read], true);
      expect(first.reference.errors.length).toBe(1);
      expect(first.framed.errors).toEqual(first.reference.errors);
      expect(first.framed.packets).toEqual(first.reference.packets);
      expect(first.reference.packets.length).toBe(5);
      // The read after an error starts afresh: what the framed parser gives then is what a
      // fresh mqtt-packet parser gives. (mqtt-packet's own parser keeps a stale read position
      // after "Cannot parse topic", and misreads the next read too.)
      const framed = new FramedParser(mqttPacket, { protocolVersion: 5 });
      const after = stream(100, true, 5);
      const seen = run(framed, [read, after]);
      expect(seen.errors).toEqual(first.reference.errors);
      expect(seen.packets).toEqual([...first.reference.packets, ...both([after], true).reference.packets]);
      expect(seen.packets.length).toBe(10);
    });
  }

  it("reads a PUBLISH too short for its packet id within its own bytes, not into the next packet", () => {
    const good = stream(101, true, 3);
    // QoS 1, remaining length 3: a one-byte topic and no room for the packet id.
    const short = Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61]);
    const { framed, reference } = both([Buffer.concat([good, short, good])], true);
    const alone = both([short], true).reference;
    const goods = both([good], true).reference.packets;
    expect(framed.errors).toEqual([]);
    // What mqtt-packet makes of the packet alone, and every packet after it intact.
    expect(framed.packets).toEqual([...goods, ...alone.packets, ...goods]);
    // mqtt-packet itself, given the whole stream, takes the packet id from the next packet's bytes.
    expect(reference.packets[3]).not.toEqual(alone.packets[0]);
  });

  it("patches the client.js it was written for, and refuses any other", () => {
    const original = readFileSync(join(mqttDir, "build/lib/client.js"), "utf8");
    const patched = frameParse(original, "/x/framed-parse.ts");
    expect(patched).toContain('require("/x/framed-parse.ts").framedParser(mqtt_packet_1.default, this.options)');
    expect(patched).not.toContain("mqtt_packet_1.default.parser(this.options)");
    expect(() => frameParse(original.replace(".parser(this.options)", ".parser(opts)"), "/x")).toThrow(/framed-parse/);
    expect(() => frameParse(`${original}\n${original}`, "/x")).toThrow(/framed-parse/);
  });
});
