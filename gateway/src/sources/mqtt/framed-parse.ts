/**
 * mqtt-packet parses every packet through a state machine over a BufferList, a field at a time;
 * for a flood of small PUBLISH packets that is most of what the gateway spends in mqtt.js. The
 * bundle's mqtt.js gets this parser instead (docs/performance.md has the figures). It cuts the
 * bytes into whole packets by their fixed header, reads a plain PUBLISH itself (no MQTT 5
 * properties, which is what Mosquitto sends unless the publisher set some) and hands every other
 * packet, whole, to mqtt-packet's own parser: the packets, their order and the errors are the same,
 * except that a malformed packet is read within its own bytes, never into the next one's.
 */
import { EventEmitter } from "node:events";

/** The part of mqtt-packet's parser mqtt.js uses, and this one offers. */
export interface PacketParser extends EventEmitter {
  error: Error | null;
  parse(buf: Buffer): number;
}

export interface MqttPacketModule {
  parser(opts?: object): PacketParser;
}

/** A PUBLISH as mqtt-packet gives it: the same fields, in the same order. */
export interface PublishPacket {
  cmd: "publish";
  retain: boolean;
  qos: number;
  dup: boolean;
  length: number;
  topic: string;
  payload: Buffer;
  messageId?: number;
}

const PUBLISH = 3;
/** A fixed header is at most 5 bytes: the type and flags, and up to 4 of remaining length. */
const MAX_HEADER = 5;

export class FramedParser extends EventEmitter implements PacketParser {
  error: Error | null = null;
  private inner: PacketParser;
  /** The bytes so far of a packet not yet whole, and how many it takes (0: its header is not all there). */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private need = 0;
  private readonly v5: boolean;

  constructor(
    private readonly mqttPacket: MqttPacketModule,
    private readonly opts: { protocolVersion?: number } = {},
  ) {
    super();
    this.v5 = opts.protocolVersion === 5;
    this.inner = this.makeInner();
  }

  /** Parses what `buf` completes; returns the bytes kept for the next call, as mqtt-packet does. */
  parse(buf: Buffer): number {
    if (this.error) {
      // As mqtt-packet: after an error the next read starts afresh, and nothing kept survives.
      this.error = null;
      this.parts = [];
      this.partsBytes = 0;
      this.inner = this.makeInner();
    }
    let data = buf;
    if (this.parts.length > 0) {
      this.parts.push(buf);
      this.partsBytes += buf.length;
      // A large packet arrives in many reads: joined once, when it is whole.
      if (this.need > 0 && this.partsBytes < this.need) return this.partsBytes;
      data = Buffer.concat(this.parts, this.partsBytes);
      this.parts = [];
      this.partsBytes = 0;
    }
    let at = 0;
    while (at < data.length) {
      const end = packetEnd(data, at);
      if (end < 0) {
        // A malformed length: mqtt-packet reads it and says why.
        this.inner.parse(data.subarray(at));
        return 0;
      }
      if (end === 0 || end > data.length) {
        this.parts = [data.subarray(at)];
        this.partsBytes = data.length - at;
        this.need = end === 0 ? 0 : end - at;
        return this.partsBytes;
      }
      const publish = data[at]! >> 4 === PUBLISH ? this.publish(data, at, end) : undefined;
      if (publish) this.emit("packet", publish);
      else this.inner.parse(data.subarray(at, end));
      if (this.error) return 0;
      at = end;
    }
    return 0;
  }

  /** A plain PUBLISH read here; undefined for anything mqtt-packet should read. */
  private publish(data: Buffer, start: number, end: number): PublishPacket | undefined {
    const first = data[start]!;
    const qos = (first >> 1) & 3;
    if (qos === 3) return undefined;
    let at = start + 1;
    while (data[at]! & 0x80) at++;
    at++;
    const length = end - at;
    if (at + 2 > end) return undefined;
    const topicEnd = at + 2 + data.readUInt16BE(at);
    if (topicEnd > end) return undefined;
    const topic = data.toString("utf8", at + 2, topicEnd);
    at = topicEnd;
    let messageId: number | undefined;
    if (qos > 0) {
      if (at + 2 > end) return undefined;
      messageId = data.readUInt16BE(at);
      at += 2;
    }
    if (this.v5) {
      // Properties' length 0 is one byte; any properties go to mqtt-packet.
      if (at >= end || data[at] !== 0) return undefined;
      at++;
    }
    const retain = (first & 1) !== 0;
    const dup = (first & 8) !== 0;
    const payload = data.subarray(at, end);
    return messageId === undefined
      ? { cmd: "publish", retain, qos, dup, length, topic, payload }
      : { cmd: "publish", retain, qos, dup, length, topic, payload, messageId };
  }

  private makeInner(): PacketParser {
    const inner = this.mqttPacket.parser(this.opts);
    inner.on("packet", (p: unknown) => this.emit("packet", p));
    inner.on("error", (err: Error) => {
      this.error = err;
      this.emit("error", err);
    });
    return inner;
  }
}

/**
 * Where the packet starting at `at` ends: 0 when its fixed header is not all there yet, -1
 * when its remaining length is malformed (more than 4 bytes).
 */
function packetEnd(data: Buffer, at: number): number {
  let length = 0;
  let mul = 1;
  for (let i = at + 1; i < at + MAX_HEADER; i++) {
    if (i >= data.length) return 0;
    const b = data[i]!;
    length += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return i + 1 + length;
    mul *= 0x80;
  }
  return -1;
}

/** What the bundle's mqtt.js calls instead of `mqttPacket.parser(options)`. */
export function framedParser(mqttPacket: MqttPacketModule, opts?: { protocolVersion?: number }): PacketParser {
  return new FramedParser(mqttPacket, opts);
}

const ORIGINAL = /\n(\s*)const parser = mqtt_packet_1\.default\.parser\(this\.options\);\n/;

/**
 * mqtt.js's client.js with its parser made by `framedParser` (loaded from `modulePath`).
 * Throws when the code is not the one this was written for, so that a new mqtt.js fails the
 * bundle's build instead of running unpatched.
 */
export function frameParse(clientJs: string, modulePath: string): string {
  const m = ORIGINAL.exec(clientJs);
  if (!m || ORIGINAL.exec(clientJs.slice(m.index + m[0].length)))
    throw new Error("mqtt.js client.js: its parser is not made where framed-parse.ts expects it");
  const line =
    `\n${m[1]}const parser = require(${JSON.stringify(modulePath)})` +
    ".framedParser(mqtt_packet_1.default, this.options);\n";
  return clientJs.slice(0, m.index) + line + clientJs.slice(m.index + m[0].length);
}
