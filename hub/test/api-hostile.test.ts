/**
 * Closed by default, and bad or greedy clients cost only themselves: the hub listens on
 * loopback unless told otherwise and refuses an open port beyond it; parameters that used to
 * reach PostgreSQL and fail as 500 are 400s; a full API pool answers 503 with Retry-After at
 * once instead of 500 after 10 s; one address cannot take every live-stream slot; /login
 * attempts are limited per address. Real hub, real PostgreSQL and NATS; a second client
 * address comes from 127.0.0.2 (all of 127/8 is loopback on Linux).
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { IncomingMessage } from "node:http";
import {
  AttemptLimiter,
  clientKey,
  ConfigError,
  isLoopbackHost,
  metricValue,
  silentLogger,
  subjects,
} from "@datalab/shared";
import { createTestDatabase, NATS_URL, uniqueId, waitFor, type TestDatabase } from "@datalab/shared/testing";
import { Hub, loadHubConfig } from "../src/index";

const id = uniqueId("hostile");
const TOKEN = `tok-${id}-0123456789abcdef`;
let db: TestDatabase;
let hub: Hub;
let port: number;

beforeAll(async () => {
  db = await createTestDatabase();
  hub = new Hub(
    loadHubConfig({
      env: {
        DATALAB_NATS_URL: NATS_URL,
        DATALAB_PG_URL: db.url,
        DATALAB_NATS_PREFIX: id,
        DATALAB_HTTP_PORT: "0",
        DATALAB_API_TOKEN: TOKEN,
        DATALAB_API_POOL_SIZE: "2",
        DATALAB_API_QUEUE_WAIT_MS: "300",
        DATALAB_LIVE_MAX_CLIENTS_PER_ADDRESS: "2",
        DATALAB_LOGIN_MAX_FAILURES: "3",
      },
    }),
    { logger: silentLogger() },
  );
  await hub.start();
  port = hub.httpPort;
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

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request from a chosen loopback source address; `keepOpen` returns once headers arrive (a live stream). */
function call(
  path: string,
  o: {
    from?: string;
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    keepOpen?: boolean;
    token?: boolean;
  } = {},
): Promise<Answer & { close: () => void }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      ...(o.token === false ? {} : { authorization: `Bearer ${TOKEN}` }),
      ...o.headers,
    };
    if (o.body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: o.method ?? "GET",
        localAddress: o.from ?? "127.0.0.1",
        headers,
        agent: false,
      },
      (res) => {
        const close = () => res.destroy();
        if (o.keepOpen && res.statusCode === 200) {
          resolve({ status: 200, headers: res.headers, body: "", close });
          return;
        }
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, close }));
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

describe("closed by default", () => {
  it("listens on 127.0.0.1 unless configured, and refuses 0.0.0.0 without a token, naming the variables", async () => {
    expect(loadHubConfig({ env: {} }).httpHost).toBe("127.0.0.1");
    const open = new Hub(
      loadHubConfig({
        env: {
          DATALAB_NATS_URL: NATS_URL,
          DATALAB_PG_URL: db.url,
          DATALAB_NATS_PREFIX: id,
          DATALAB_HTTP_PORT: "0",
          DATALAB_HTTP_HOST: "0.0.0.0",
        },
      }),
      {
        logger: silentLogger(),
      },
    );
    const err = await open.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    await open.stop();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/DATALAB_HTTP_HOST="0\.0\.0\.0" serves the API.*set DATALAB_API_TOKEN/);
  });
});

describe("addresses", () => {
  it("counts as loopback only 127/8, ::1 and localhost", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "192.0.2.2", "10.0.0.1", "fe80::1", "example.org", "128.0.0.1"])
      expect(isLoopbackHost(h), h).toBe(false);
  });

  it("keys a client by its IPv4 address (also when mapped into IPv6) and an IPv6 client by its /64", () => {
    const key = (remoteAddress: string) => clientKey({ socket: { remoteAddress } } as unknown as IncomingMessage);
    expect(key("192.0.2.7")).toBe("192.0.2.7");
    expect(key("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(key("2001:db8:1:2::5")).toBe(key("2001:db8:1:2:ffff:1:2:3"));
    expect(key("2001:db8:1:2::5")).not.toBe(key("2001:db8:1:3::5"));
    expect(key("2001:0db8:0001:0002::1")).toBe(key("2001:db8:1:2::1"));
  });
});

describe("parameters that reached PostgreSQL", () => {
  it.each([
    ["/api/sensors?prefix=%00", "prefix", /control characters/],
    ["/api/readings?sensor=s&metric=m&to=-999999999w", "to", /between 1970 and 2200/],
    ["/api/readings?sensor=s&metric=m&from=-999999999w", "from", /between 1970 and 2200/],
    ["/api/readings?sensor=s&metric=m&bucket=999999999w", "bucket", /at most 36500d/],
    ["/api/sparklines?from=now-999999999w", "from", /between 1970 and 2200/],
  ])("%s answers 400 naming %s", async (path, param, why) => {
    const r = await call(path);
    expect(r.status, r.body).toBe(400);
    const body = JSON.parse(r.body) as { problems: { param: string; message: string }[] };
    expect(body.problems[0]!.param).toBe(param);
    expect(body.problems[0]!.message).toMatch(why);
  });
});

describe("API pool exhausted", () => {
  it(
    "answers 503 with Retry-After within the queue wait, not 500 after 10 s; " +
      "one client leaves a connection for others; serves again once it frees",
    async () => {
      // Slow queries: a lock makes the sensors query wait inside PostgreSQL.
      const locker = new pg.Client({ connectionString: db.url });
      await locker.connect();
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE sensors IN ACCESS EXCLUSIVE MODE");
      const busyBefore = await metricValue(hub.metrics.registry, "datalab_hub_api_busy_total");
      const t0 = Date.now();
      const answers = Array.from({ length: 20 }, () =>
        call("/api/sensors").then((r) => ({ ...r, after: Date.now() - t0 })),
      );
      const settled: (Answer & { after: number })[] = [];
      for (const a of answers) void a.then((r) => settled.push(r));
      // One client gets all connections but one (of two: one); its other 19 requests are refused while the lock stands.
      await waitFor(() => settled.length >= 19, "19 requests to be refused", 20_000);
      expect(settled.every((r) => r.status === 503)).toBe(true);
      for (const r of settled) {
        expect(r.headers["retry-after"]).toBe("5");
        expect(JSON.parse(r.body).error).toMatch(
          /busy: the 2 API database connections \(DATALAB_API_POOL_SIZE\) are in use/,
        );
        expect(r.after).toBeLessThan(8_000);
      }
      expect((await metricValue(hub.metrics.registry, "datalab_hub_api_busy_total")) - busyBefore).toBe(19);
      // Another client still gets the connection the first one could not take.
      const other = await call("/api/readings?sensor=none&metric=temperature", { from: "127.0.0.2" });
      expect(other.status, other.body).toBe(404); // answered from the database: no such series
      expect(settled.length).toBe(19);
      await locker.query("COMMIT");
      await locker.end();
      const all = await Promise.all(answers);
      expect(all.filter((r) => r.status === 200)).toHaveLength(1);
      expect((await call("/api/sensors")).status).toBe(200);
    },
  );
});

describe("live stream", () => {
  it("limits streams per address: a third from one address gets 503, another address still gets a stream", async () => {
    const open: (() => void)[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = await call("/api/live", { keepOpen: true });
        expect(s.status).toBe(200);
        open.push(s.close);
      }
      const third = await call("/api/live", { keepOpen: true });
      expect(third.status).toBe(503);
      expect(third.headers["retry-after"]).toBe("10");
      expect(JSON.parse(third.body).error).toMatch(/DATALAB_LIVE_MAX_CLIENTS_PER_ADDRESS/);
      expect(await metricValue(hub.metrics.registry, "datalab_hub_live_refused_total", { reason: "per_address" })).toBe(
        1,
      );
      const other = await call("/api/live", { keepOpen: true, from: "127.0.0.2" });
      expect(other.status).toBe(200);
      open.push(other.close);
    } finally {
      for (const c of open) c();
    }
    // Closing frees the address's slots.
    await waitFor(
      async () => (await call("/api/live", { keepOpen: true }).then((s) => (s.close(), s.status))) === 200,
      "a slot to free after the streams closed",
    );
  });
});

describe("/login", () => {
  const form = (token: string) => new URLSearchParams({ token }).toString();

  it(
    "answers 429 with Retry-After after 3 wrong tokens from one address, even for the right one; " +
      "another address still logs in",
    async () => {
      for (let i = 0; i < 3; i++)
        expect((await call("/login", { method: "POST", body: form(`wrong-${i}`), token: false })).status).toBe(401);
      const limited = await call("/login", { method: "POST", body: form(TOKEN), token: false });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);
      expect(limited.headers["set-cookie"]).toBeUndefined();
      expect(limited.body).toMatch(/Too many wrong tokens/);
      const other = await call("/login", { method: "POST", body: form(TOKEN), token: false, from: "127.0.0.2" });
      expect(other.status).toBe(303);
      expect(
        await metricValue(hub.metrics.registry, "datalab_hub_login_refused_total", { result: "wrong_token" }),
      ).toBe(3);
      expect(
        await metricValue(hub.metrics.registry, "datalab_hub_login_refused_total", { result: "rate_limited" }),
      ).toBe(1);
    },
  );

  it("forgets an address's failures after the window, and tracks a bounded number of addresses", () => {
    let t = 0;
    const l = new AttemptLimiter({ maxFailures: 2, windowMs: 60_000, maxClients: 100, now: () => t });
    l.fail("a");
    l.fail("a");
    expect(l.retryAfterSeconds("a")).toBe(60);
    t = 59_500;
    expect(l.retryAfterSeconds("a")).toBe(1);
    t = 60_000;
    expect(l.retryAfterSeconds("a")).toBe(0);
    for (let i = 0; i < 1_000; i++) l.fail(`addr-${i}`);
    expect(l.size).toBeLessThanOrEqual(100);
  });
});
