import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, uniqueId, waitFor, type NatsServer } from "@datalab/shared/testing";
import { classifyNatsError } from "../src/uplink/nats-errors";

/**
 * What an operator reads when NATS refuses something, from the errors a real server and the
 * real client produce. A gateway with the minimal permissions (no $JS.API) is refused the
 * stream check it makes at start: that must not read as a refusal of its readings subject.
 */
describe("classifyNatsError on a real server's permission violations", () => {
  const gatewayId = uniqueId("gwe");
  let nats: NatsServer;
  let nc: NatsConnection;
  const asyncErrors: unknown[] = [];

  beforeAll(async () => {
    nats = await startNatsServer({
      config: `authorization { users = [ { user: "gw", password: "pw", permissions: {
        publish: { allow: ["datalab.readings.${gatewayId}"] }, subscribe: { allow: ["_INBOX_${gatewayId}.>"] } } } ] }`,
    });
    nc = await connect({ servers: nats.url, user: "gw", pass: "pw", inboxPrefix: `_INBOX_${gatewayId}` });
    void (async () => {
      for await (const s of nc.status()) if (s.type === "error") asyncErrors.push(s.error);
    })();
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
    if (nats) rmSync(nats.storeDir, { recursive: true, force: true });
  });

  it("$JS.API.INFO refused: names the JetStream API and the setting, not the readings subject", async () => {
    const err = await jetstreamManager(nc).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    // The server's asynchronous -ERR, which the uplink reports from the connection's status.
    const async = await waitFor(
      () => asyncErrors.find((e) => String((e as Error).message).includes("$JS.API.INFO")),
      "the server's -ERR for $JS.API.INFO",
    );
    for (const e of [err, async]) {
      const d = classifyNatsError(e);
      expect(d.kind).toBe("permission");
      expect(d.message).toMatch(/JetStream API \(\$JS\.API\.INFO\)/);
      expect(d.message).toMatch(/DATALAB_NATS_ENSURE_STREAM/);
      expect(d.message).not.toMatch(/readings subject/);
    }
  });

  it("another gateway's readings subject refused: still blamed on the readings subject", async () => {
    const err = await jetstream(nc, { timeout: 5_000 })
      .publish("datalab.readings.someone-else", new Uint8Array([1]))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const d = classifyNatsError(err);
    expect(d.kind).toBe("permission");
    expect(d.message).toMatch(/publish to its readings subject/);
    expect(d.message).toContain("datalab.readings.someone-else");
  });
});
