/**
 * A radio plugged back in is read from the moment its device node appears: the source watches
 * the node's directory (no poll: pollMs is an hour here) and reads what the radio sent before
 * the port was opened, which serialport's open would flush. Real pty pairs from socat; the
 * gateway's path is a by-id style symlink in a directory the test creates and removes, as udev
 * does with /dev/serial/by-id. The ingest after the source is a recorder standing in for the
 * pipeline (the outbox has its own tests); port, codec and source are the real ones.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createRegistry, silentLogger, type DecodedReading } from "@datalab/shared";
import { runCommand, tempDir, waitFor } from "@datalab/shared/testing";
import { encodeMySensorsSet, encodeXBee, MysVariable } from "@datalab/sensors";
import type { Ingest } from "../src/ingest/index";
import { codecMetrics } from "../src/metrics/index";
import { SerialSource } from "../src/sources/serial/source";
import { NodeEnd, PtyPair, requireSocat } from "./serial-pty";

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Stands in for the gateway's ingest: records the readings and quarantined bytes a source hands over. */
function recorder() {
  const readings: DecodedReading[] = [];
  const quarantined: string[] = [];
  const ingest = {
    receive: (_source: string, payload: Buffer, decode: (p: Buffer, ctx: object) => DecodedReading[]) =>
      readings.push(...decode(payload, {})),
    quarantine: (_source: string, _payload: Buffer, reason: string) => quarantined.push(reason),
  } as unknown as Ingest;
  return { ingest, readings, quarantined };
}

/** Bytes waiting in a tty's input queue (FIONREAD), read without consuming them. */
async function queued(tty: string): Promise<number> {
  const script = [
    "import os,fcntl,termios,struct,sys",
    "fd=os.open(sys.argv[1],os.O_RDONLY|os.O_NOCTTY|os.O_NONBLOCK)",
    "print(struct.unpack('i',fcntl.ioctl(fd,termios.FIONREAD,b'\\0'*4))[0])",
  ].join("\n");
  const r = await runCommand("/usr/bin/python3", ["-c", script, tty]);
  if (r.code !== 0) throw new Error(`FIONREAD on ${tty} failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** The real serial source on `path`, with no poll: only the directory watch can open the port. */
function serialSource(path: string, protocol: "mysensors" | "xbee", ingest: Ingest): SerialSource {
  return new SerialSource(
    {
      spec: { path, protocol, baudRate: 115_200 },
      metrics: codecMetrics(createRegistry("test", false)),
      logger: silentLogger(),
      pollMs: 3_600_000,
    },
    ingest,
  );
}

async function replugCase(
  protocol: "mysensors" | "xbee",
  frame: (i: number) => Buffer,
  readingValue: (r: DecodedReading) => number | undefined,
) {
  requireSocat();
  const dir = tempDir("datalab-replug-");
  const byId = join(dir, "by-id");
  const path = join(byId, "usb-radio-if00");
  const pty = new PtyPair(dir, protocol);
  const { ingest, readings, quarantined } = recorder();
  const source = serialSource(path, protocol, ingest);
  let node: NodeEnd | undefined;
  cleanup.push(async () => {
    await node?.close();
    await source.stop();
    await pty.unplug();
    rmSync(dir, { recursive: true, force: true });
  });
  await source.start();
  await waitFor(
    () => /waiting for .* to appear/.test(source.status().lastError ?? ""),
    "the source to wait for the device",
  );

  let sent = 0;
  for (let plug = 1; plug <= 2; plug++) {
    // The radio is there and talking before its by-id name appears: nothing can have read it yet.
    await pty.plug();
    node = await NodeEnd.open(pty.node);
    const first = sent;
    let bytes = 0;
    for (let i = 0; i < 19; i++) {
      const f = frame(sent++);
      bytes += f.length;
      await node.write(f);
    }
    // socat forwards asynchronously: the frames are "sent" once they wait at the radio's end.
    await waitFor(async () => (await queued(pty.radio)) === bytes, `${bytes} bytes waiting at the radio's end`);
    mkdirSync(byId, { recursive: true });
    symlinkSync(pty.radio, path);
    await waitFor(
      () => source.status().state === "connected" && source.status().opens === plug,
      `the port to open on plug ${plug} (no poll: only the watch can open it)`,
    );
    // And after the open, as usual.
    for (let i = 0; i < 5; i++) await node.write(frame(sent++));
    await waitFor(() => readings.length === sent, `${sent} readings after plug ${plug} (seen ${readings.length})`);
    expect(readings.slice(first).map(readingValue)).toEqual(Array.from({ length: sent - first }, (_, i) => first + i));
    expect(quarantined).toEqual([]);

    // Unplug: both ends go, and so does the by-id directory (udev removes it with the last device).
    await node.close();
    node = undefined;
    await pty.unplug();
    rmSync(byId, { recursive: true, force: true });
    await waitFor(() => source.status().state === "disconnected", `the source to notice unplug ${plug}`);
  }
  const st = source.status();
  expect(st.readBeforeOpen).toBeGreaterThan(0);
  expect(st.frames.readings).toBe(sent);
  expect(st.unreadMs).toBeGreaterThanOrEqual(0);
}

describe("a radio plugged back in (needs socat)", () => {
  it(
    "MySensors: the port opens when the device node appears, and the " +
      "lines sent before the open are read, not lost",
    async () => {
      await replugCase(
        "mysensors",
        (i) => encodeMySensorsSet(7, 1, MysVariable.HUM, i),
        (r) => r.value,
      );
    },
  );

  it("XBee: the same for binary frames", async () => {
    // A text packet from one node: "temperature=<i>" is read as that metric's value.
    await replugCase(
      "xbee",
      (i) => encodeXBee({ type: 0x90, source64: "0013a20040522bab", data: `temperature=${i}` }),
      (r) => r.value,
    );
  });

  it("a device node that goes away while the port is open closes it, though the port saw no hangup", async () => {
    requireSocat();
    const dir = tempDir("datalab-node-gone-");
    const byId = join(dir, "by-id");
    const path = join(byId, "usb-radio-if00");
    const pty = new PtyPair(dir, "mysensors");
    const { ingest, readings } = recorder();
    const source = serialSource(path, "mysensors", ingest);
    let node: NodeEnd | undefined;
    cleanup.push(async () => {
      await node?.close();
      await source.stop();
      await pty.unplug();
      rmSync(dir, { recursive: true, force: true });
    });
    await pty.plug();
    mkdirSync(byId, { recursive: true });
    symlinkSync(pty.radio, path);
    await source.start();
    await waitFor(() => source.status().state === "connected", "the port to open");
    // udev removes the node; the pty behind it lives on, so the open port itself reports nothing.
    rmSync(byId, { recursive: true, force: true });
    await waitFor(() => source.status().state === "disconnected", "the source to notice the node is gone");
    mkdirSync(byId, { recursive: true });
    symlinkSync(pty.radio, path);
    await waitFor(() => source.status().state === "connected" && source.status().opens === 2, "the port to reopen");
    node = await NodeEnd.open(pty.node);
    await node.write(encodeMySensorsSet(7, 1, MysVariable.HUM, 42));
    await waitFor(() => readings.length === 1, "a reading through the reopened port");
    expect(readings[0]!.value).toBe(42);
  });
});
