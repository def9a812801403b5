/**
 * The BufferList fast paths the bundle adds (src/sources/mqtt/buffer-list-fast.ts) against
 * the real `bl` and mqtt-packet that mqtt.js parses with: every read gives what the original
 * gives, and whole MQTT streams cut into random chunks parse to the same packets. Each side
 * loads its own copy of the modules, so the copy mqtt.js uses elsewhere is never changed.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { addFastPaths, type BufferListLike } from "../src/sources/mqtt/buffer-list-fast";
import { rng } from "./support/random";

const fromGateway = createRequire(import.meta.url);
const mqttDir = dirname(fromGateway.resolve("mqtt/package.json"));
const fromMqtt = createRequire(`${mqttDir}/`);
const packetDir = dirname(fromMqtt.resolve("mqtt-packet/package.json"));
const fromPacket = createRequire(`${packetDir}/`);
const blPath = fromPacket.resolve("bl");
const parserPath = fromPacket.resolve("mqtt-packet/parser.js");

/** A BufferList as the test drives it: the reads the fast paths cover, and filling and consuming. */
interface BL extends BufferListLike {
  append(b: Buffer): void;
  consume(n: number): void;
  length: number;
}
type Parser = { parse(b: Buffer): number; on(e: string, f: (p: unknown) => void): void };

/** A fresh copy of bl and of mqtt-packet's parser (on that bl), out of Node's module cache. */
function freshCopy(fast: boolean): { BufferList: new () => BL; parser: (o: object) => Parser } {
  const keys = Object.keys(fromGateway.cache).filter((k) => k.startsWith(dirname(blPath)) || k === parserPath);
  const saved = new Map(keys.map((k) => [k, fromGateway.cache[k]]));
  for (const k of keys) delete fromGateway.cache[k];
  try {
    // As in the bundle: changed as BufferList.js loads, before bl.js copies its methods onto the stream.
    const BufferList = fromPacket(`${dirname(blPath)}/BufferList.js`) as new () => BL;
    if (fast) expect(addFastPaths(BufferList.prototype, new BufferList())).toBe(true);
    const bl = fromPacket(blPath) as { BufferList: new () => BL };
    const Parser = fromPacket(parserPath) as { parser(o: object): Parser };
    return { BufferList: bl.BufferList, parser: (o) => Parser.parser(o) };
  } finally {
    for (const k of Object.keys(fromGateway.cache))
      if (k.startsWith(dirname(blPath)) || k === parserPath) delete fromGateway.cache[k];
    for (const [k, m] of saved) fromGateway.cache[k] = m;
  }
}

function chunks(data: Buffer, rand: (n: number) => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const size = [1, 2, 3, 7, 64, 1_000, 65_536][rand(7)]! + rand(5);
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}

describe("BufferList fast paths (the bundle's mqtt-packet)", () => {
  it("read the same bytes, numbers, strings and slices as bl itself, wherever the chunks are cut", () => {
    const plain = freshCopy(false).BufferList;
    const fast = freshCopy(true).BufferList;
    const rand = rng(42);
    for (let round = 0; round < 300; round++) {
      const data = Buffer.from(Array.from({ length: 1 + rand(300) }, () => rand(256)));
      // Multibyte text, so that strings cut inside a character are compared too.
      data.write("héllo ✓", rand(data.length), "utf8");
      const a = new plain();
      const b = new fast();
      for (const c of chunks(data, rand)) {
        a.append(c);
        b.append(c);
      }
      const skip = rand(Math.min(40, data.length));
      a.consume(skip);
      b.consume(skip);
      for (let k = 0; k < 40; k++) {
        const start = rand(a.length + 3) - 1;
        const end = start + rand(12);
        const same = <T>(f: (l: BL) => T) => {
          let x: unknown;
          let y: unknown;
          try {
            x = f(a);
          } catch (e) {
            x = `threw ${(e as Error).name}`;
          }
          try {
            y = f(b);
          } catch (e) {
            y = `threw ${(e as Error).name}`;
          }
          expect(y).toEqual(x);
        };
        same((l) => l.readUInt8(start));
        same((l) => l.readUInt16BE(start));
        same((l) => l.readUInt32BE(start));
        same((l) => l.get(start));
        same((l) => l.toString("utf8", start, end));
        same((l) => l.slice(start, end).toString("hex"));
        same((l) => l.slice(start).toString("hex"));
      }
    }
  });

  it("parse MQTT 3.1.1 and 5 streams cut into random chunks to the same packets", () => {
    const generate = fromPacket("mqtt-packet").generate as (p: object, o: object) => Buffer;
    for (const protocolVersion of [4, 5]) {
      const rand = rng(protocolVersion);
      const packets: object[] = [];
      for (let i = 0; i < 2_000; i++) {
        const qos = rand(3);
        const kind = rand(10);
        if (kind === 0) packets.push({ cmd: "pingresp" });
        else if (kind === 1) packets.push({ cmd: "puback", messageId: 1 + rand(65_535) });
        else {
          const payload = Buffer.from(
            `{"sensor":"s-${i}","t":${rand(400) / 10},"name":"é✓${"x".repeat(rand(3) * rand(900))}"}`,
          );
          packets.push({
            cmd: "publish",
            topic: `sensors/ü-${rand(100)}/${"t".repeat(rand(40))}`,
            payload,
            qos,
            retain: rand(2) === 1,
            dup: false,
            ...(qos > 0 ? { messageId: 1 + rand(65_535) } : {}),
            ...(protocolVersion === 5 && rand(2) === 1
              ? { properties: { contentType: "application/json", userProperties: { k: `v${i}` } } }
              : {}),
          });
        }
      }
      const data = Buffer.concat(packets.map((p) => generate(p, { protocolVersion })));
      const parse = (fast: boolean) => {
        const parser = freshCopy(fast).parser({ protocolVersion });
        const out: unknown[] = [];
        parser.on("packet", (p) => out.push(JSON.parse(JSON.stringify(p))));
        parser.on("error", (e) => out.push(`error ${String(e)}`));
        for (const c of chunks(data, rng(7))) parser.parse(c);
        return out;
      };
      const plain = parse(false);
      expect(plain).toHaveLength(packets.length);
      expect(parse(true)).toEqual(plain);
    }
  });

  it("leaves a prototype it does not recognise, or has already changed, as it is", () => {
    const { BufferList } = freshCopy(true);
    expect(addFastPaths(BufferList.prototype as never, new BufferList() as never)).toBe(false);
    const other = { readUInt8: () => 0 };
    expect(addFastPaths(other as never, {} as never)).toBe(false);
    expect(other.readUInt8()).toBe(0);
  });
});
