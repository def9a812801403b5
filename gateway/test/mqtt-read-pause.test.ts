/**
 * The MQTT source's read pause, against the real Mosquitto: a trickle of messages is read in
 * a few wake-ups instead of one per message, nothing is lost or reordered, and a flood is
 * never slowed by it.
 */
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { MQTT_URL, startMosquitto, uniqueId, waitFor } from "@datalab/shared/testing";
import type { Ingest } from "../src/ingest/index";
import type { Delivery } from "../src/outbox/deliveries";
import { MqttSource } from "../src/sources/mqtt/source";

/** Records what the source hands on, grouped by the event-loop turn it arrived in. */
function recorder() {
  const received: number[] = [];
  const turns: number[][] = [];
  let open: number[] | undefined;
  const ingest = {
    // Each message counts as committed at once: its acknowledgement goes out as it arrives.
    receive(
      _source: string,
      payload: Buffer,
      _decoder: unknown,
      _ctx: unknown,
      _receivedAt: unknown,
      delivery?: Delivery,
    ) {
      delivery?.owner.settled([delivery]);
      const n = Number(payload.toString());
      received.push(n);
      if (!open) {
        open = [];
        turns.push(open);
        setImmediate(() => (open = undefined));
      }
      open.push(n);
    },
    commitNow() {},
  } as unknown as Ingest;
  return { ingest, received, turns };
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function start(readPauseMs: number, url = MQTT_URL) {
  const topic = `test/${uniqueId("pause")}`;
  const r = recorder();
  const source = new MqttSource(
    {
      url,
      routes: [{ filter: `${topic}/#`, decoder: () => [] }],
      clientId: uniqueId("gw-"),
      persistentSession: false,
      sessionExpirySeconds: 0,
      qos: 1,
      readPauseMs,
      logger: silentLogger(),
    },
    r.ingest,
  );
  await source.start();
  stops.push(() => source.stop());
  await waitFor(() => source.status().state === "connected", "the source to connect");
  const publisher = await mqtt.connectAsync(url, { clientId: uniqueId("pub-") });
  stops.push(() => publisher.endAsync());
  return { ...r, topic, publisher };
}

/** One message every `gapMs`, each waiting for its PUBACK: a trickle, as from sensors. */
async function trickle(publisher: mqtt.MqttClient, topic: string, count: number, gapMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await publisher.publishAsync(`${topic}/s`, String(i), { qos: 1 });
    await new Promise((r) => setTimeout(r, gapMs));
  }
}

/** The reads (event-loop turns) that carried messages numbered `from` and later. */
function turnsFrom(turns: number[][], from: number): number {
  return turns.filter((t) => t.some((n) => n >= from)).length;
}

describe("MQTT read pause", () => {
  // 80 messages at about 35/s, over more than 2 s: the first second is read as it comes, as
  // the rate is not known yet; the last 30 fall in the windows after.
  it("without it, a trickle wakes the gateway once per message (the reference)", async () => {
    const w = await start(0);
    await trickle(w.publisher, w.topic, 80, 25);
    await waitFor(() => w.received.length === 80, "all 80 messages");
    expect(turnsFrom(w.turns, 50)).toBeGreaterThanOrEqual(25);
  });

  it(
    "with 100 ms, once the rate is known to be a trickle, it is " + "read in a few wake-ups, whole and in order",
    async () => {
      const w = await start(100);
      await trickle(w.publisher, w.topic, 80, 25);
      await waitFor(() => w.received.length === 80, "all 80 messages");
      expect(w.received).toEqual(Array.from({ length: 80 }, (_, i) => i));
      // The last 30 messages span at least 750 ms, read at most every 100 ms: about 8 reads.
      expect(turnsFrom(w.turns, 50)).toBeLessThanOrEqual(12);
    },
  );

  it("does not hold back a flood that follows a trickle: the first full read ends the pausing", async () => {
    // A broker of its own: the burst waits there during the first pause, beyond the shared
    // broker's default queue of 1,000 messages, which would drop the rest.
    const broker = await startMosquitto();
    stops.push(() => broker.stop());
    const w = await start(500, broker.url);
    await trickle(w.publisher, w.topic, 30, 40);
    const sends: Promise<unknown>[] = [];
    for (let i = 30; i < 5_000; i++) sends.push(w.publisher.publishAsync(`${w.topic}/s`, String(i), { qos: 1 }));
    await Promise.all(sends);
    // Paused after every read, 5,000 messages in reads of at most 100 in flight would take 25 s.
    await waitFor(() => w.received.length === 5_000, "all 5,000 messages", 10_000);
    expect(w.received).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
  });
});
