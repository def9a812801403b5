/**
 * The read pause on its own (sources/mqtt/read-pause.ts): on a real TCP socket, a paused read
 * leaves what arrives in the kernel until it resumes; and the trickle detector, driven by a
 * clock of the test's, pauses only while messages trickle and stops at the first full read.
 */
import { EventEmitter } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "@datalab/shared/testing";
import { pauseReading, ReadPause, resumeReading, TRICKLE_PER_PAUSE } from "../src/sources/mqtt/read-pause";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
});

async function socketPair(): Promise<{ reader: Socket; writer: Socket }> {
  const server: Server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const { connect } = await import("node:net");
  const reader = connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => reader.once("connect", () => resolve()));
  const writer = await accepted;
  closers.push(() => {
    reader.destroy();
    writer.destroy();
    server.close();
  });
  return { reader, writer };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("pauseReading / resumeReading on a real socket", () => {
  it("stop the handle's reads: nothing is read while paused, everything after the resume, in order", async () => {
    const { reader, writer } = await socketPair();
    let got = "";
    reader.on("data", (d: Buffer) => (got += d.toString()));
    writer.write("a");
    await waitFor(() => got === "a", "the first byte");
    const stopped = pauseReading(reader);
    expect(stopped).toBe(true);
    writer.write("bc");
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBe("a");
    resumeReading(reader, stopped);
    await waitFor(() => got === "abc", "the bytes sent during the pause");
  });

  it("resuming a destroyed socket does nothing", async () => {
    const { reader } = await socketPair();
    const stopped = pauseReading(reader);
    reader.destroy();
    expect(() => resumeReading(reader, stopped)).not.toThrow();
  });
});

/** A stream standing in for the socket: 'data' events on demand, pause and resume counted. */
class FakeStream extends EventEmitter {
  pauses = 0;
  resumes = 0;
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
}

describe("the trickle detector", () => {
  it("pauses after a window of trickle, ends at the next timer, and a full read ends the pausing", async () => {
    let now = 0;
    const stream = new FakeStream();
    const pause = new ReadPause(stream, { pauseMs: 50, now: () => now });
    const read = async (messages: number) => {
      stream.emit("data");
      for (let i = 0; i < messages; i++) pause.count();
      await turn();
    };
    // The first window: the rate is not known yet, nothing pauses.
    await read(1);
    now = 500;
    await read(1);
    expect(pause.paused).toBe(false);
    // A window of 3 messages in 1 s is a trickle at 50 ms pauses (under 15 per pause).
    now = 1_000;
    await read(1);
    expect(pause.paused).toBe(true);
    expect(stream.pauses).toBe(1);
    await waitFor(() => !pause.paused, "the pause to end by its timer");
    expect(stream.resumes).toBe(1);
    // A read with a pause's worth of messages: no longer a trickle.
    now = 1_100;
    await read(TRICKLE_PER_PAUSE);
    expect(pause.paused).toBe(false);
    now = 1_200;
    await read(1);
    expect(pause.paused).toBe(false);
  });

  it("resumeNow ends a pause at once", async () => {
    let now = 0;
    const stream = new FakeStream();
    const pause = new ReadPause(stream, { pauseMs: 5_000, now: () => now });
    stream.emit("data");
    pause.count();
    await turn();
    now = 1_000;
    stream.emit("data");
    pause.count();
    await turn();
    expect(pause.paused).toBe(true);
    pause.resumeNow();
    expect(pause.paused).toBe(false);
    expect(stream.resumes).toBe(1);
  });
});
