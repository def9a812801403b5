/** Optional bearer-token auth: everything but /healthz asks for DATALAB_API_TOKEN once it is set. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { ConfigError, silentLogger, subjects } from "@datalab/shared";
import { createTestDatabase, NATS_URL, tempDir, uniqueId, type TestDatabase } from "@datalab/shared/testing";
import { Hub, loadHubConfig } from "../src/index";
import { resolveApiToken } from "../src/api";

const id = uniqueId("auth");
const TOKEN = `tok-${id}-0123456789abcdef`;
let db: TestDatabase;
let hub: Hub;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  const tokenFile = join(tempDir(), "api-token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  hub = new Hub(
    loadHubConfig({
      env: {
        DATALAB_NATS_URL: NATS_URL,
        DATALAB_PG_URL: db.url,
        DATALAB_NATS_PREFIX: id,
        DATALAB_HTTP_PORT: "0",
        DATALAB_HTTP_HOST: "127.0.0.1",
        DATALAB_API_TOKEN_FILE: tokenFile,
      },
    }),
    { logger: silentLogger() },
  );
  await hub.start();
  base = `http://127.0.0.1:${hub.httpPort}`;
});

afterAll(async () => {
  await hub?.stop();
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(subjects(id).stream).catch(() => undefined);
  await jsm.streams.delete(subjects(id).deadLetterStream).catch(() => undefined);
  await nc.close();
  await db?.drop();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe("API token (DATALAB_API_TOKEN_FILE)", () => {
  it("leaves /healthz open", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it("asks for the token on the API, the live stream and /metrics, and takes the right one", async () => {
    for (const path of ["/api/sensors", "/api/gateways", "/api/readings?sensor=x&metric=y", "/api/live", "/metrics"]) {
      const none = await fetch(`${base}${path}`);
      expect(none.status, path).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(((await none.json()) as { error: string }).error).toMatch(/Authorization: Bearer/);
      const wrong = await fetch(`${base}${path}`, { headers: bearer(`${TOKEN}x`) });
      expect(wrong.status, path).toBe(401);
      await wrong.body?.cancel();
    }
    const ok = await fetch(`${base}/api/sensors`, { headers: bearer(TOKEN) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { sensors: unknown[] }).sensors).toEqual([]);
    const metrics = await fetch(`${base}/metrics`, { headers: bearer(TOKEN) });
    expect(await metrics.text()).toMatch(/datalab_hub_live_clients/);
  });

  it("shows the dashboard's login form instead of the page, and the form's cookie opens it", async () => {
    for (const path of ["/", "/js/app.js", "/vendor/uPlot.esm.js"]) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(401);
      expect(await r.text()).toMatch(/<form method="post" action="\/login">/);
    }
    const wrong = await fetch(`${base}/login`, {
      method: "POST",
      body: new URLSearchParams({ token: "nope" }),
      redirect: "manual",
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toMatch(/not the one this hub was given/);
    expect(wrong.headers.get("set-cookie")).toBeNull();

    const login = await fetch(`${base}/login`, {
      method: "POST",
      body: new URLSearchParams({ token: TOKEN }),
      redirect: "manual",
    });
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/");
    const setCookie = login.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toContain(TOKEN); // a hash of it, not the token
    const cookie = setCookie.split(";")[0]!;
    const page = await fetch(`${base}/`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/Wireless Sensor DataLab/);
    expect((await fetch(`${base}/api/gateways`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${base}/api/gateways`, { headers: { cookie: `${cookie}x` } })).status).toBe(401);
  });

  it("fails at start, naming the variable, when the token is too short or its file is missing", () => {
    expect(() => loadHubConfig({ env: { DATALAB_API_TOKEN: "short" } })).toThrow(
      /DATALAB_API_TOKEN=\(secret\): expected at least 16 characters/,
    );
    const cfg = loadHubConfig({ env: { DATALAB_API_TOKEN_FILE: "/nonexistent/token" } });
    expect(() => resolveApiToken(cfg)).toThrow(ConfigError);
    expect(() => resolveApiToken(cfg)).toThrow(/DATALAB_API_TOKEN_FILE="\/nonexistent\/token": cannot read it/);
  });
});
