import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { UplinkError } from "@datalab/shared";
import { freePort, startNatsServer, tempDir, uniqueId, waitFor, type NatsServer } from "@datalab/shared/testing";
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

const hasOpenssl = spawnSync("sh", ["-c", "command -v openssl"]).status === 0;

/** Each kind from what the real client reports, on a server of the test's own. */
describe("classifyNatsError: every kind from the real client", () => {
  let nats: NatsServer;
  const open: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await startNatsServer({ config: `authorization { users = [ { user: "u", password: "right" } ] }` });
  });

  afterAll(async () => {
    for (const nc of open) await nc.close();
    await nats?.stop();
    if (nats) rmSync(nats.storeDir, { recursive: true, force: true });
  });

  async function client(): Promise<NatsConnection> {
    const nc = await connect({ servers: nats.url, user: "u", pass: "right" });
    open.push(nc);
    return nc;
  }

  const failure = (p: Promise<unknown>) =>
    p.then(
      () => expect.fail("expected a failure"),
      (e: unknown) => e,
    );

  it("wrong password: authorization, naming the settings to check", async () => {
    const e = classifyNatsError(
      await failure(connect({ servers: nats.url, user: "u", pass: "wrong", reconnect: false })),
    );
    expect(e.kind).toBe("authorization");
    expect(e.message).toMatch(/refused this gateway's credentials.*Authorization Violation/);
  });

  it("no stream takes the subject: no_stream", async () => {
    const js = jetstream(await client(), { timeout: 5_000 });
    const e = classifyNatsError(await failure(js.publish(uniqueId("nostream"), new Uint8Array([1]))));
    expect(e.kind).toBe("no_stream");
    expect(e.message).toMatch(/no JetStream stream takes/);
  });

  it("no answer in time: timeout", async () => {
    const nc = await client();
    const subject = uniqueId("silent");
    nc.subscribe(subject, { callback: () => undefined });
    await nc.flush();
    const e = classifyNatsError(await failure(jetstream(nc, { timeout: 200 }).publish(subject, new Uint8Array([1]))));
    expect(e.kind).toBe("timeout");
  });

  it("nothing listens: unreachable", async () => {
    const e = classifyNatsError(await failure(connect({ servers: `127.0.0.1:${await freePort()}`, reconnect: false })));
    expect(e.kind).toBe("unreachable");
    expect(e.message).toMatch(/NATS server unreachable/);
  });

  it("a closed connection: unreachable", async () => {
    const nc = await connect({ servers: nats.url, user: "u", pass: "right" });
    await nc.close();
    expect(classifyNatsError(await failure(jetstream(nc).publish("x", new Uint8Array([1])))).kind).toBe("unreachable");
  });

  it("TLS asked of a server without it: tls, naming the settings", async () => {
    const conn = connect({ servers: nats.url, user: "u", pass: "right", tls: {}, reconnect: false });
    const e = classifyNatsError(await failure(conn));
    expect(e.kind).toBe("tls");
    expect(e.message).toMatch(/DATALAB_NATS_TLS_CA/);
  });

  it.skipIf(!hasOpenssl)("a server certificate the client does not trust: tls (needs openssl)", async () => {
    const dir = tempDir("datalab-tls-");
    const made = spawnSync("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"],
      ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
    ]);
    expect(made.status).toBe(0);
    const tls = await startNatsServer({
      config: `tls { cert_file: "${join(dir, "cert.pem")}", key_file: "${join(dir, "key.pem")}" }`,
    });
    try {
      const e = classifyNatsError(await failure(connect({ servers: tls.url, tls: {}, reconnect: false })));
      expect(e.kind).toBe("tls");
      expect(e.message).toMatch(/TLS with the NATS server failed/);
    } finally {
      await tls.stop();
      rmSync(tls.storeDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a server's error that lost its class is parsed as the client parses it", () => {
    expect(classifyNatsError(new Error("'Authorization Violation'")).kind).toBe("authorization");
    const e = classifyNatsError(new Error(`Permissions Violation for Subscription to "_INBOX.abc.*"`));
    expect(e.kind).toBe("permission");
    expect(e.message).toMatch(/reply inbox/);
  });

  it("an UplinkError is already classified: passed through as it is", () => {
    const e = new UplinkError("hub refused the batch", { kind: "other" });
    expect(classifyNatsError(e)).toBe(e);
  });
});
