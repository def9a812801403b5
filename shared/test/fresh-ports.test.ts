import { connect as connectTcp, createServer, type Server, type Socket } from "node:net";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, onFreshPorts, startMosquitto, startNatsServer, startPostgres, type NatsServer } from "../testing";

/**
 * A port freePort() gave out is free only until bound: an outgoing connection may get it as its
 * local port first. Here one does, on purpose, and every server the harness starts must say so in
 * words onFreshPorts knows, so that it starts again elsewhere instead of failing the test.
 */
describe("the test harness's servers on a port an outgoing connection took (real servers)", () => {
  let listener: Server;
  let client: Socket;
  let taken: number;

  beforeAll(async () => {
    listener = createServer(() => undefined);
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const { port } = listener.address() as { port: number };
    client = connectTcp(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject));
    taken = client.localPort!;
  });

  afterAll(async () => {
    client?.destroy();
    await new Promise((resolve) => listener?.close(resolve));
  });

  it("nats-server, Mosquitto and Postgres each refuse it saying the address is in use", async () => {
    await expect(startNatsServer({ port: taken })).rejects.toThrow(/address already in use/i);
    await expect(startMosquitto({ port: taken })).rejects.toThrow(/address already in use/i);
    await expect(startPostgres({ port: taken })).rejects.toThrow(/address already in use/i);
  });

  it("onFreshPorts starts again on a fresh port, and the server there answers", async () => {
    const ports: number[] = [];
    const server: NatsServer = await onFreshPorts(async () => {
      const port = ports.length === 0 ? taken : await freePort();
      ports.push(port);
      return startNatsServer({ port });
    });
    try {
      expect(ports).toHaveLength(2);
      expect(server.port).toBe(ports[1]);
      expect(server.port).not.toBe(taken);
      const nc = await connect({ servers: server.url, reconnect: false });
      await nc.flush();
      await nc.close();
    } finally {
      await server.kill();
    }
  });

  it("onFreshPorts tries anything else once, and gives up after its attempts", async () => {
    let calls = 0;
    await expect(
      onFreshPorts(async () => {
        calls++;
        throw new Error("nats-server exited: bad config");
      }),
    ).rejects.toThrow(/bad config/);
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      onFreshPorts(async () => {
        calls++;
        return startNatsServer({ port: taken });
      }, 2),
    ).rejects.toThrow(/address already in use/i);
    expect(calls).toBe(2);
  });
});
