/**
 * What parsing a flood's PUBLISH packets costs the gateway's bundle: mqtt-packet's parser (as
 * the bundle has it: `debug` off, the BufferList fast paths) against the framed parser of
 * src/sources/mqtt/framed-parse.ts, on the same bytes, in alternating rounds.
 *
 *   pnpm exec tsx gateway/bench/mqtt-parse.ts [--messages 100000] [--rounds 9]
 *
 * The packets are the e2e stage's: MQTT 5, QoS 1, a topic per sensor and a small JSON payload,
 * fed in the 4 KiB slices the bundle's mqtt.js parses a socket read in.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { tempDir } from "@datalab/shared/testing";
import { bundleLikeGateway, debugOff, fastBufferList } from "../scripts/plugins";
import { PARSE_SLICE_BYTES } from "../src/sources/mqtt/sliced-parse";
import type { MqttPacketModule, PacketParser } from "../src/sources/mqtt/framed-parse";

const { values } = parseArgs({
  options: { messages: { type: "string", default: "100000" }, rounds: { type: "string", default: "9" } },
});
const N = Number(values.messages);
const ROUNDS = Number(values.rounds);

const mqttDir = dirname(createRequire(import.meta.url).resolve("mqtt/package.json"));
const outfile = join(tempDir("datalab-parse-"), "parsers.mjs");
await bundleLikeGateway(
  `import mqttPacket from ${JSON.stringify(createRequire(join(mqttDir, "package.json")).resolve("mqtt-packet"))};` +
    'export { framedParser } from "./src/sources/mqtt/framed-parse.ts"; export { mqttPacket };',
  outfile,
  [debugOff, fastBufferList],
);
const bundled = (await import(pathToFileURL(outfile).href)) as {
  mqttPacket: MqttPacketModule & { generate(p: object, o: object): Buffer };
  framedParser(m: MqttPacketModule, o: object): PacketParser;
};

const opts = { protocolVersion: 5 };
const packets: Buffer[] = [];
for (let i = 0; i < N; i++) {
  const sensor = `bench-${String(i % 100).padStart(5, "0")}`;
  const payload = Buffer.from(
    `{"sensor":"${sensor}","temperature":${(20 + (i % 100) / 10).toFixed(1)},"ts":${1_764_000_000 + i}}`,
  );
  packets.push(
    bundled.mqttPacket.generate(
      { cmd: "publish", topic: `bench/e2e-0123456789/sensors/${sensor}`, payload, qos: 1, messageId: 1 + (i % 65_535) },
      opts,
    ),
  );
}
const stream = Buffer.concat(packets);
const slices: Buffer[] = [];
for (let at = 0; at < stream.length; at += PARSE_SLICE_BYTES) slices.push(stream.subarray(at, at + PARSE_SLICE_BYTES));

/** CPU milliseconds to parse the whole stream once. */
function once(parser: PacketParser): number {
  let n = 0;
  parser.on("packet", () => n++);
  const t = process.cpuUsage();
  for (const s of slices) parser.parse(s);
  const u = process.cpuUsage(t);
  if (n !== N) throw new Error(`parsed ${n} of ${N} packets`);
  return (u.user + u.system) / 1000;
}

const times = { "mqtt-packet": [] as number[], framed: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  times["mqtt-packet"].push(once(bundled.mqttPacket.parser(opts)));
  times.framed.push(once(bundled.framedParser(bundled.mqttPacket, opts)));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const per100k = (ms: number) => ((ms / 1000) * 100_000) / N;
console.log(
  `${N} PUBLISH packets of ${(stream.length / N).toFixed(0)} bytes, ${PARSE_SLICE_BYTES}-byte slices, ${ROUNDS} rounds`,
);
for (const [name, xs] of Object.entries(times))
  console.log(
    `${name}: ${per100k(median(xs)).toFixed(3)} CPU-s per 100k (rounds ${xs.map((x) => x.toFixed(0)).join(", ")} ms)`,
  );
console.log(`framed / mqtt-packet: ${(median(times.framed) / median(times["mqtt-packet"])).toFixed(2)}`);
