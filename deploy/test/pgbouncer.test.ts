/**
 * Why the deploy docs say to connect the hub to PostgreSQL directly, not through PgBouncer:
 * against Debian's real pgbouncer (transaction pooling, as a pooler in front of many hub
 * replicas would run), started by this test on a free port in front of the test PostgreSQL.
 * The hub's API pool sends statement_timeout and a read-only `options` as startup parameters,
 * which PgBouncer refuses, so the API cannot answer; the sink's plain connections pass.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Hub, loadHubConfig } from "@datalab/hub";
import { silentLogger } from "@datalab/shared";
import {
  createTestDatabase,
  freePort,
  NATS_URL,
  tempDir,
  uniqueId,
  waitFor,
  type TestDatabase,
} from "@datalab/shared/testing";

const TOKEN = "pgbouncer-test-token-0123456789";
let dir: string;
let port: number;
let proc: ChildProcess | undefined;
let db: TestDatabase;
let hub: Hub | undefined;

function pgbouncerBinary(): string {
  const path = spawnSync("sh", ["-c", "command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null"], {
    encoding: "utf8",
  })
    .stdout.trim()
    .split("\n")[0];
  if (!path) throw new Error("pgbouncer is not installed: apt-get install -y pgbouncer (CI's .ci/run must install it)");
  return path;
}

beforeAll(async () => {
  const bin = pgbouncerBinary();
  db = await createTestDatabase();
  const target = new URL(db.url);
  dir = tempDir("datalab-pgbouncer-");
  chmodSync(dir, 0o777);
  port = await freePort();
  writeFileSync(join(dir, "users.txt"), `"${decodeURIComponent(target.username)}" ""\n`);
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${target.hostname} port=${target.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      "unix_socket_dir =",
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
    ].join("\n"),
  );
  // PgBouncer refuses to run as root.
  const asRoot = process.getuid?.() === 0;
  proc = spawn(
    asRoot ? "runuser" : bin,
    asRoot ? ["-u", "postgres", "--", bin, join(dir, "pgbouncer.ini")] : [join(dir, "pgbouncer.ini")],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  proc.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4_000)));
  await waitFor(
    async () => {
      if (proc!.exitCode !== null) throw new Error(`pgbouncer exited ${proc!.exitCode}: ${log}`);
      const c = new pg.Client({
        connectionString: `postgres://${target.username}@127.0.0.1:${port}${target.pathname}`,
      });
      return c.connect().then(
        () => c.end().then(() => true),
        () => false,
      );
    },
    "pgbouncer to accept connections",
    20_000,
    100,
  );
}, 60_000);

afterAll(async () => {
  await hub?.stop().catch(() => undefined);
  if (hub) {
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    for (const name of [hub.subjects.stream, hub.subjects.deadLetterStream])
      await jsm.streams.delete(name).catch(() => undefined);
    await nc.close();
  }
  const pidFile = join(dir ?? "", "pgbouncer.pid");
  if (dir && existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGTERM");
  if (proc && proc.exitCode === null)
    await new Promise<void>((resolve) => (proc!.once("exit", () => resolve()), setTimeout(resolve, 10_000)));
  await db?.drop();
});

describe("the hub behind PgBouncer in transaction mode (real pgbouncer)", () => {
  it("refuses the API pool's startup parameters, so the hub's API cannot answer through it", async () => {
    const target = new URL(db.url);
    const url = `postgres://${target.username}@127.0.0.1:${port}${target.pathname}`;
    // The sink's plain connection passes: the pooler itself works.
    const plain = new pg.Client({ connectionString: url });
    await plain.connect();
    expect((await plain.query<{ x: number }>("SELECT 1 AS x")).rows[0]!.x).toBe(1);
    await plain.end();

    hub = new Hub(
      loadHubConfig({
        env: {
          DATALAB_NATS_URL: NATS_URL,
          DATALAB_NATS_PREFIX: uniqueId("pgb"),
          DATALAB_PG_URL: url,
          DATALAB_HTTP_PORT: "0",
          DATALAB_HTTP_HOST: "127.0.0.1",
          DATALAB_API_TOKEN: TOKEN,
        },
      }),
      { logger: silentLogger() },
    );
    await hub.start();
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/sensors`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = await res.text();
    expect(res.status, body).toBeGreaterThanOrEqual(500);
    // The reason, from the pooler itself, for a client with the API pool's settings.
    const api = new pg.Client({
      connectionString: url,
      statement_timeout: 5_000,
      options: "-c default_transaction_read_only=on",
    });
    await expect(api.connect()).rejects.toThrow(/unsupported startup parameter/);
  });
});
