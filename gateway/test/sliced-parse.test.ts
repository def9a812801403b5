/**
 * The bundle's mqtt.js, which parses each socket read in slices (src/sources/mqtt/sliced-parse.ts)
 * with the framed parser (src/sources/mqtt/framed-parse.ts), built here with the bundle's own
 * plugins and run against a real Mosquitto: a flood of small and large messages arrives
 * complete, byte for byte and in order.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, tempDir, waitFor, type MosquittoBroker } from "@datalab/shared/testing";
import { bundleLikeGateway, debugOff, fastBufferList, mqttClient } from "../scripts/plugins";
import { PARSE_SLICE_BYTES, sliceParse } from "../src/sources/mqtt/sliced-parse";

const clientJs = join(dirname(createRequire(import.meta.url).resolve("mqtt/package.json")), "build/lib/client.js");

let broker: MosquittoBroker;
beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await broker?.stop();
});

/** mqtt.js bundled as the gateway's bundle bundles it. */
async function bundledMqtt(): Promise<typeof mqtt> {
  const outfile = join(tempDir("datalab-sliced-"), "mqtt.mjs");
  const result = await bundleLikeGateway('import mqtt from "mqtt"; export default mqtt;', outfile, [
    debugOff,
    fastBufferList,
    mqttClient,
  ]);
  expect(result.errors).toEqual([]);
  const code = readFileSync(outfile, "utf8");
  expect(code).toContain("completeParse = step;");
  expect(code).toContain(".framedParser(mqtt_packet_1.default, this.options)");
  return ((await import(pathToFileURL(outfile).href)) as { default: typeof mqtt }).default;
}

describe("mqtt.js parsing each read in slices (the gateway's bundle)", () => {
  it("patches the client.js it was written for, and refuses any other", () => {
    const original = readFileSync(clientJs, "utf8");
    const patched = sliceParse(original);
    expect(patched).toContain(`at + ${PARSE_SLICE_BYTES}`);
    expect(patched).not.toContain("parser.parse(buf);");
    expect(() => sliceParse(original.replace("parser.parse(buf);", "parser.parse(buf, 1);"))).toThrow(/sliced-parse/);
    expect(() => sliceParse(`${original}\n${original}`)).toThrow(/sliced-parse/);
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`delivers a flood of small and large messages complete and in order (MQTT ${protocolVersion})`, async () => {
      const bundled = await bundledMqtt();
      const topic = `sliced/${process.pid}/${Date.now()}/${protocolVersion}`;
      // Mostly flood-sized messages, some far larger than a slice, so packets straddle slice ends.
      const sent = Array.from({ length: 4_000 }, (_, i) =>
        i % 97 === 0 ? randomBytes(PARSE_SLICE_BYTES * 3 + (i % 13)) : randomBytes(20 + (i % 180)),
      );
      const got: Buffer[] = [];
      const types: (string | undefined)[] = [];
      const sub = await bundled.connectAsync(broker.url, {
        clientId: `sliced-sub-${process.pid}-${protocolVersion}`,
        clean: true,
        protocolVersion,
      });
      let pub: MqttClient | undefined;
      try {
        sub.on("message", (_t, payload, packet) => {
          got.push(Buffer.from(payload));
          types.push(packet.properties?.contentType);
        });
        await sub.subscribeAsync(topic, { qos: 1 });
        pub = await mqtt.connectAsync(broker.url, { clientId: `sliced-pub-${process.pid}`, protocolVersion });
        // Over MQTT 5 every tenth message carries a property: the framed parser hands those to
        // mqtt-packet, between the plain ones it reads itself.
        const props = (i: number) =>
          protocolVersion === 5 && i % 10 === 3 ? { properties: { contentType: `t${i}` } } : {};
        await Promise.all(sent.map((p, i) => pub!.publishAsync(topic, p, { qos: 1, ...props(i) })));
        await waitFor(() => got.length >= sent.length, "every message at the subscriber");
        expect(got.length).toBe(sent.length);
        const firstDiff = got.findIndex((g, i) => !g.equals(sent[i]!));
        expect(firstDiff).toBe(-1);
        expect(types).toEqual(sent.map((_, i) => props(i).properties?.contentType));
      } finally {
        await pub?.endAsync();
        await sub.endAsync();
      }
    });
  }
});
