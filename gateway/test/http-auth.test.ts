/**
 * Closed by default: the gateway's status/metrics port listens on loopback unless told
 * otherwise, refuses to start beyond loopback without a token, and with a token answers
 * /status and /metrics only to a request that carries it. /healthz stays open for probes but
 * says only `ok` without the token (the full status holds the instance id).
 */
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, silentLogger } from "@datalab/shared";
import { Gateway } from "../src/gateway";
import type { GatewayStatus } from "../src/status";
import { loadGatewayConfig } from "../src/config";
import { runCli, testWorld, worldConfig } from "./support/gateway";

const TOKEN = "gw-token-0123456789abcdef";
const cleanup: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A gateway with no MQTT (nothing to read) whose uplink connects in the background. */
async function startGateway(env: Record<string, string>): Promise<Gateway> {
  const w = testWorld({
    DATALAB_MQTT_ENABLED: "false",
    DATALAB_SHUTDOWN_DRAIN_MS: "0",
    DATALAB_REPORT_INTERVAL_MS: "0",
  });
  const { DATALAB_HTTP_HOST: _host, ...worldEnv } = w.env;
  const g = new Gateway(loadGatewayConfig({ env: { ...worldEnv, ...env } }), { logger: silentLogger() });
  cleanup.push(async () => {
    await g.stop();
    rmSync(w.dataDir, { recursive: true, force: true });
  });
  await g.start();
  return g;
}

/** An address of this machine that other machines can reach, if it has one. */
function externalIpv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

function reaches(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

describe("gateway HTTP port", () => {
  it("listens on 127.0.0.1 by default: only that address reaches it, not another one of this machine's", async () => {
    expect(loadGatewayConfig({ env: {} }).httpHost).toBe("127.0.0.1");
    const g = await startGateway({});
    expect(await reaches("127.0.0.1", g.httpPort)).toBe(true);
    // A socket on 0.0.0.0 would answer on 127.0.0.2 too (and on the network address, if any).
    expect(await reaches("127.0.0.2", g.httpPort)).toBe(false);
    const ext = externalIpv4();
    if (ext) expect(await reaches(ext, g.httpPort)).toBe(false);
    // No token on loopback: open, as before.
    expect((await fetch(`http://127.0.0.1:${g.httpPort}/status`)).status).toBe(200);
  });

  it("refuses to start beyond loopback without a token, naming the variables", async () => {
    const w = testWorld({ DATALAB_MQTT_ENABLED: "false", DATALAB_HTTP_HOST: "0.0.0.0" });
    const g = new Gateway(worldConfig(w), { logger: silentLogger() });
    cleanup.push(async () => {
      await g.stop();
      rmSync(w.dataDir, { recursive: true, force: true });
    });
    const err = await g.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/DATALAB_HTTP_HOST="0\.0\.0\.0".*DATALAB_HTTP_TOKEN/);
  });

  it(
    "with a token on 0.0.0.0: /status and /metrics need it, /healthz " +
      "answers ok alone without it, the status command sends it",
    async () => {
      const g = await startGateway({ DATALAB_HTTP_HOST: "0.0.0.0", DATALAB_HTTP_TOKEN: TOKEN });
      const base = `http://127.0.0.1:${g.httpPort}`;
      expect(await reaches("127.0.0.2", g.httpPort)).toBe(true);
      for (const path of ["/status", "/metrics", "/nope"]) {
        const none = await fetch(`${base}${path}`);
        expect(none.status, path).toBe(401);
        expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(await none.text()).not.toContain(g.outbox.instance);
        const wrong = await fetch(`${base}${path}`, bearer(`${TOKEN}x`));
        expect(wrong.status, path).toBe(401);
        await wrong.body?.cancel();
      }
      const status = await fetch(`${base}/status`, bearer(TOKEN));
      expect(status.status).toBe(200);
      expect(((await status.json()) as GatewayStatus).instance).toBe(g.outbox.instance);
      const metrics = await fetch(`${base}/metrics`, bearer(TOKEN));
      expect(await metrics.text()).toMatch(/datalab_gateway_/);

      const open = await fetch(`${base}/healthz`);
      expect(open.status).toBe(200);
      expect(await open.json()).toEqual({ ok: true });
      const full = (await (await fetch(`${base}/healthz`, bearer(TOKEN))).json()) as GatewayStatus & { ok: boolean };
      expect(full).toMatchObject({ ok: true, instance: g.outbox.instance });

      const env = {
        DATALAB_HTTP_HOST: "0.0.0.0",
        DATALAB_HTTP_PORT: String(g.httpPort),
        DATALAB_DATA_DIR: g.config.dataDir,
      };
      const withToken = await runCli(["status", "--json"], { ...env, DATALAB_HTTP_TOKEN: TOKEN });
      expect(withToken.code, withToken.stderr).toBe(0);
      expect(JSON.parse(withToken.stdout)).toMatchObject({ online: true, instance: g.outbox.instance });
      const without = await runCli(["status", "--json"], { ...env, DATALAB_HTTP_HOST: "127.0.0.1" });
      expect(without.code).toBe(1);
      expect(without.stderr).toMatch(/asks for a token: run with the same DATALAB_HTTP_TOKEN/);
    },
  );
});
