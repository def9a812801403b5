/**
 * The bundle's mqtt.js, which parses each socket read in slices (src/sources/mqtt/sliced-parse.ts),
 * built here with the bundle's own plugins and run against a real Mosquitto: a flood of small
 * and large messages arrives complete, byte for byte and in order.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, tempDir, waitFor, type MosquittoBroker } from "@datalab/shared/testing";
import { debugOff, fastBufferList, slicedParse } from "../scripts/plugins";
import { PARSE_SLICE_BYTES, sliceParse } from "../src/sources/mqtt/sliced-parse";

const gatewayDir = join(dirname(new URL(import.meta.url).pathname), "..");
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
  const result = await build({
    stdin: { contents: 'import mqtt from "mqtt"; export default mqtt;', resolveDir: gatewayDir, loader: "js" },
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
    plugins: [debugOff, fastBufferList, slicedParse],
    logLevel: "error",
  });
  expect(result.errors).toEqual([]);
  expect(readFileSync(outfile, "utf8")).toContain("completeParse = step;");
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

  it("delivers a flood of small and large messages complete and in order", async () => {
    const bundled = await bundledMqtt();
    const topic = `sliced/${process.pid}/${Date.now()}`;
    // Mostly flood-sized messages, some far larger than a slice, so packets straddle slice ends.
    const sent = Array.from({ length: 4_000 }, (_, i) =>
      i % 97 === 0 ? randomBytes(PARSE_SLICE_BYTES * 3 + (i % 13)) : randomBytes(20 + (i % 180)),
    );
    const got: Buffer[] = [];
    const sub = await bundled.connectAsync(broker.url, { clientId: `sliced-sub-${process.pid}`, clean: true });
    let pub: MqttClient | undefined;
    try {
      sub.on("message", (_t, payload) => got.push(Buffer.from(payload)));
      await sub.subscribeAsync(topic, { qos: 1 });
      pub = await mqtt.connectAsync(broker.url, { clientId: `sliced-pub-${process.pid}` });
      await Promise.all(sent.map((p) => pub!.publishAsync(topic, p, { qos: 1 })));
      await waitFor(() => got.length >= sent.length, "every message at the subscriber");
      expect(got.length).toBe(sent.length);
      const firstDiff = got.findIndex((g, i) => !g.equals(sent[i]!));
      expect(firstDiff).toBe(-1);
    } finally {
      await pub?.endAsync();
      await sub.endAsync();
    }
  });
});
