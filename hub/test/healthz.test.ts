import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { startNatsServer, waitFor, type NatsServer, type TestDatabase } from "@datalab/shared/testing";
import { testDatabase } from "./support/db";
import { Hub } from "../src/hub";
import { testConfig } from "./support/config";

/**
 * /healthz tells the truth about NATS: a client reconnecting in the background is not closed,
 * and the hub used to answer "connected" (200) for as long as NATS was down. A NATS server of
 * the test's own is stopped and started again.
 */
describe("hub /healthz follows the NATS connection", () => {
  let nats: NatsServer;
  let db: TestDatabase;
  let hub: Hub;
  const health = async () => {
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}/healthz`);
    return { status: res.status, body: (await res.json()) as { ok: boolean; nats: string } };
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    db = await testDatabase();
    hub = new Hub(testConfig({ DATALAB_NATS_URL: nats.url, DATALAB_PG_URL: db.url }), { logger: silentLogger() });
    await hub.start();
  });

  afterAll(async () => {
    await hub?.stop();
    await nats?.stop();
    await db?.drop();
  });

  it("answers 200 connected, 503 disconnected while NATS is down, and 200 again once it is back", async () => {
    expect(await health()).toMatchObject({ status: 200, body: { ok: true, nats: "connected" } });
    await nats.stop();
    await waitFor(async () => (await health()).status === 503, "/healthz answering 503 with NATS down");
    expect((await health()).body).toMatchObject({ ok: false, nats: "disconnected" });
    await nats.start();
    await waitFor(async () => (await health()).status === 200, "/healthz answering 200 with NATS back", 30_000);
    expect((await health()).body).toMatchObject({ ok: true, nats: "connected" });
  });
});
