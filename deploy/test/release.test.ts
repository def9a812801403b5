/**
 * The self-contained release (deploy/release.ts), as a Pi gets it: `install.sh --from` lays it
 * out in a scratch root, and the installed unit's own command line runs the gateway — under
 * qemu-aarch64 for the arm64 release, natively for x64 — against this test's Mosquitto and
 * NATS, with an in-process hub writing Postgres. A published reading lands; `status` reads the
 * outbox while the gateway is down; a kill -9 and a restart lose nothing; an upgrade and a
 * rollback keep the outbox.
 *
 * A release takes minutes to build (better-sqlite3 is compiled for the target), so it is built
 * once per lockfile and sources into .cache/release-test/<hash>/ and reused.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { silentLogger, subjects } from "@datalab/shared";
import {
  createTestDatabase,
  runCommand,
  startMosquitto,
  startNatsServer,
  tempDir,
  TIME_SCALE,
  uniqueId,
  waitFor,
  type MosquittoBroker,
  type NatsServer,
  type TestDatabase,
} from "@datalab/shared/testing";
import { Hub, loadHubConfig } from "@datalab/hub";
import { GatewayProcess } from "../../gateway/test/support/gateway";
import type { GatewayStatus } from "../../gateway/src/status";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const INSTALL = join(ROOT, "deploy/pi/install.sh");
const APP = "opt/datalab/gateway";
/** A release build compiles SQLite for the target: minutes here, so 15 before the 3x scale. */
const BUILD_MS = 15 * 60_000;
/** Node under user-mode emulation starts in seconds, not milliseconds. */
const START_MS = 60_000;

function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  return undefined;
}

function hashTree(h: ReturnType<typeof createHash>, path: string): void {
  if (statSync(path).isDirectory()) {
    for (const e of readdirSync(path).sort()) if (e !== "node_modules" && e !== "dist") hashTree(h, join(path, e));
  } else {
    h.update(relative(ROOT, path)).update(readFileSync(path));
  }
}

/** What a release is built from: the lockfile, the build script and every source it bundles. */
function sourcesKey(): string {
  const h = createHash("sha256");
  for (const p of [
    "pnpm-lock.yaml",
    "deploy/release.ts",
    "gateway/scripts/bundle.ts",
    "gateway/scripts/plugins.ts",
    "gateway/package.json",
    "deploy/pi",
    "docs/raspberry-pi.md",
    "gateway/src",
    "shared/src",
    "sensors/src",
  ]) {
    hashTree(h, join(ROOT, p));
  }
  return h.digest("hex").slice(0, 16);
}

async function release(arch: "arm64" | "x64"): Promise<string> {
  const dir = join(ROOT, ".cache/release-test", sourcesKey());
  const version = (JSON.parse(readFileSync(join(ROOT, "gateway/package.json"), "utf8")) as { version: string }).version;
  const tarball = join(dir, `datalab-gateway-${version}-linux-${arch}.tar.gz`);
  if (existsSync(`${tarball}.sha256`)) return tarball;
  // Only the releases of the current sources are kept: each pair is about 90 MB.
  const cache = join(ROOT, ".cache/release-test");
  if (existsSync(cache))
    for (const old of readdirSync(cache))
      if (join(cache, old) !== dir) rmSync(join(cache, old), { recursive: true, force: true });
  const r = await runCommand(
    join(ROOT, "node_modules/.bin/tsx"),
    [join(ROOT, "deploy/release.ts"), "gateway", "--arch", arch, "--out", dir],
    { timeoutMs: BUILD_MS },
  );
  if (r.code !== 0)
    throw new Error(`pnpm release gateway --arch ${arch} failed (${r.code}):\n${r.stderr.slice(-4000)}`);
  return tarball;
}

async function install(root: string, args: string[]): Promise<string> {
  const r = await runCommand("bash", [INSTALL, ...args], {
    env: { ...process.env, DESTDIR: root },
    timeoutMs: 120_000,
  });
  const out = `${r.stdout}${r.stderr}`;
  if (r.code !== 0) throw new Error(`install.sh ${args.join(" ")} exited ${r.code}:\n${out}`);
  return out;
}

const scratch = tempDir("datalab-release-");
let broker: MosquittoBroker;
let nats: NatsServer;
let db: TestDatabase;
let hub: Hub;
const prefix = uniqueId("rel");

beforeAll(async () => {
  broker = await startMosquitto();
  nats = await startNatsServer();
  db = await createTestDatabase();
  hub = new Hub(
    loadHubConfig({
      env: {
        DATALAB_NATS_URL: nats.url,
        DATALAB_PG_URL: db.url,
        DATALAB_NATS_PREFIX: prefix,
        DATALAB_HTTP_PORT: "0",
        DATALAB_HTTP_HOST: "127.0.0.1",
      },
    }),
    {
      logger: silentLogger(),
    },
  );
  await hub.start();
});

afterAll(async () => {
  await hub?.stop();
  if (nats) {
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(subjects(prefix).stream).catch(() => undefined);
    await nc.close();
    await nats.stop();
  }
  await db?.drop();
  await broker?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const qemu = which("qemu-aarch64-static");

describe.each([
  { arch: "arm64" as const, emulator: qemu ? [qemu, "-L", "/usr/aarch64-linux-gnu"] : undefined },
  { arch: "x64" as const, emulator: [] as string[] },
])("the $arch release", ({ arch, emulator }) => {
  const root = join(scratch, arch);
  const gatewayId = `gw-${prefix}-${arch}`;
  const topic = `${prefix}/${arch}/sensors`;
  let tarball: string;
  let gw: GatewayProcess | undefined;

  /** The installed unit's ExecStart, with its paths in the scratch root, run as the unit runs it. */
  function gateway(args: string[] = []): GatewayProcess {
    const unit = readFileSync(join(root, "etc/systemd/system/datalab-gateway.service"), "utf8");
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(" ");
    const argv = [
      ...exec.map((a) => (a.startsWith("/opt/") ? join(root, a) : a)).slice(0, args.length ? -1 : undefined),
      ...args,
    ];
    if (!emulator)
      throw new Error(
        "qemu-aarch64-static is not installed: apt-get install -y qemu-user-static libc6-arm64-cross " +
          "(CI's .ci/run installs them)",
      );
    const cmd = [...emulator, ...argv];
    return new GatewayProcess(
      {
        DATALAB_CONFIG: join(root, "etc/datalab/gateway.json"),
        DATALAB_DATA_DIR: join(root, "var/lib/datalab"),
        DATALAB_NATS_URL: nats.url,
        DATALAB_NATS_PREFIX: prefix,
        DATALAB_MQTT_URL: broker.url,
        DATALAB_MQTT_TOPICS: `${topic}/#`,
        DATALAB_GATEWAY_ID: gatewayId,
        DATALAB_HTTP_PORT: "0",
        // As the unit runs it: nothing preloaded from the test run's environment.
        NODE_OPTIONS: "",
      },
      { cmd: cmd[0]!, args: cmd.slice(1), cwd: join(root, APP, "current") },
    );
  }

  const count = async () =>
    Number(
      (
        await db.pool.query<{ n: string }>("SELECT count(DISTINCT value) AS n FROM readings WHERE gateway_id = $1", [
          gatewayId,
        ])
      ).rows[0]!.n,
    );

  beforeAll(
    async () => {
      tarball = await release(arch);
      mkdirSync(join(root, "var/lib/datalab"), { recursive: true });
      await install(root, ["--from", tarball, "--no-start"]);
    },
    (BUILD_MS + 180_000) * TIME_SCALE,
  );

  afterAll(async () => {
    await gw?.kill();
  });

  it("installs with its own Node.js into a unit that systemd-analyze verify accepts in the scratch root", async () => {
    expect(lstatSync(join(root, APP, "current")).isSymbolicLink()).toBe(true);
    const unit = readFileSync(join(root, "etc/systemd/system/datalab-gateway.service"), "utf8");
    expect(unit).toMatch(
      new RegExp(
        `^ExecStart=/${APP}/current/bin/node --max-semi-space-size=1 --max-old-space-size=64 ` +
          `/${APP}/current/dist/cli.mjs run$`,
        "m",
      ),
    );
    expect(JSON.parse(readFileSync(join(root, APP, "current/RELEASE"), "utf8"))).toMatchObject({
      arch,
      node: expect.stringMatching(/^22\./),
    });
    // The bundle found mqtt-packet's BufferList and gave it its fast paths, and mqtt.js parses
    // in slices (gateway/scripts/plugins.ts).
    const bundle = readFileSync(join(root, APP, "current/dist/cli.mjs"), "utf8");
    expect(bundle).toContain("addFastPaths(BufferList.prototype");
    expect(bundle).toContain("completeParse=step");
    // With --root, verify finds the unit's binary inside the scratch root; it needs the
    // system's targets there too.
    const units = join(root, "usr/lib/systemd/system");
    mkdirSync(units, { recursive: true });
    for (const t of readdirSync("/lib/systemd/system").filter((f) => f.endsWith(".target")))
      writeFileSync(join(units, t), readFileSync(join("/lib/systemd/system", t)));
    const r = await runCommand("systemd-analyze", ["verify", `--root=${root}`, "datalab-gateway.service"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("refuses a tarball that does not match its checksum", async () => {
    const bad = join(scratch, `bad-${arch}.tar.gz`);
    writeFileSync(bad, readFileSync(tarball));
    writeFileSync(`${bad}.sha256`, `${"0".repeat(64)}  bad.tar.gz\n`);
    const r = await runCommand("bash", [INSTALL, "--from", bad, "--no-start"], {
      env: { ...process.env, DESTDIR: join(scratch, `bad-${arch}`) },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not match .*sha256/);
    expect(existsSync(join(scratch, `bad-${arch}`, APP, "current"))).toBe(false);
  });

  it(
    "delivers published readings to Postgres, and loses none through a kill -9 and a restart",
    async () => {
      gw = gateway().start();
      await gw.ready(START_MS);
      await waitFor(() => gw!.log.includes("MQTT connected"), "the gateway's MQTT session", START_MS);
      const publisher = await mqtt.connectAsync(broker.url, { clientId: uniqueId("pub-"), protocolVersion: 5 });
      try {
        await publisher.publishAsync(`${topic}/r`, `{"name":"r","value":0}`, { qos: 1 });
        await waitFor(async () => (await count()) === 1, "the first reading in Postgres", START_MS, 100).catch(
          (err: Error) => {
            throw new Error(`${err.message}\n${gw!.log.slice(-3000)}`);
          },
        );

        for (let v = 1; v <= 100; v++)
          await publisher.publishAsync(`${topic}/r`, `{"name":"r","value":${v}}`, { qos: 1 });
        const killed = await gw.kill("SIGKILL");
        expect(killed.signal).toBe("SIGKILL");
        // Published while the gateway is down: the broker keeps them for its persistent session.
        for (let v = 101; v <= 200; v++)
          await publisher.publishAsync(`${topic}/r`, `{"name":"r","value":${v}}`, { qos: 1 });

        // `status` with no gateway answering reads the outbox file (exit 3: "not running").
        const status = gateway(["status", "--json"]).start();
        const exit = await status.exit!;
        expect(exit.code, status.log).toBe(3);
        const s = JSON.parse(status.log.slice(status.log.indexOf("{"))) as GatewayStatus;
        expect(s.online).toBe(false);
        expect(s.gatewayId).toBe(gatewayId);
        expect(s.outbox.readings).toBeGreaterThanOrEqual(0);

        gw = gateway().start();
        await gw.ready(START_MS);
        await waitFor(
          async () => (await count()) === 201,
          "all 201 readings in Postgres after the restart",
          START_MS,
          200,
        ).catch(async (err: Error) => {
          throw new Error(`${err.message}; ${await count()} landed\n${gw!.log.slice(-3000)}`);
        });
        // Exactly once: what the broker redelivered after the kill was not stored twice.
        const rows = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings WHERE gateway_id = $1", [
          gatewayId,
        ]);
        expect(Number(rows.rows[0]!.n)).toBe(201);
      } finally {
        await publisher.endAsync();
      }
      await gw.kill("SIGTERM");
    },
    6 * START_MS * TIME_SCALE,
  );

  it(
    "upgrades to a new release and rolls back to the previous one, keeping config and outbox",
    async () => {
      const base = join(root, APP);
      const json = join(root, "etc/datalab/gateway.json");
      const edited = readFileSync(json, "utf8").replace("nats://hub.example.org:4222", "nats://hub.test:4222");
      writeFileSync(json, edited);
      const outbox = join(root, "var/lib/datalab/outbox.db");
      const outboxBefore = readFileSync(outbox);
      const first = readlinkSync(join(base, "current"));

      await install(root, ["--upgrade", "--from", tarball, "--no-start"]);
      const second = readlinkSync(join(base, "current"));
      expect(second).not.toBe(first);
      expect(readlinkSync(join(base, "previous"))).toBe(first);
      expect(readFileSync(json, "utf8")).toBe(edited);

      const back = await install(root, ["--rollback"]);
      expect(back).toContain("rolled back");
      expect(readlinkSync(join(base, "current"))).toBe(first);
      expect(readlinkSync(join(base, "previous"))).toBe(second);
      expect(readFileSync(json, "utf8")).toBe(edited);
      expect(readFileSync(outbox).equals(outboxBefore)).toBe(true);

      // The rolled-back release reads the kept outbox, runs, and delivers on top of what it held.
      const status = gateway(["status", "--json"]).start();
      const exit = await status.exit!;
      expect(exit.code, status.log).toBe(3);
      expect((JSON.parse(status.log.slice(status.log.indexOf("{"))) as GatewayStatus).gatewayId).toBe(gatewayId);
      gw = gateway().start();
      await gw.ready(START_MS);
      const publisher = await mqtt.connectAsync(broker.url, { clientId: uniqueId("pub-"), protocolVersion: 5 });
      try {
        await publisher.publishAsync(`${topic}/r`, `{"name":"r","value":1000}`, { qos: 1 });
        await waitFor(async () => (await count()) === 202, "a reading through the rolled-back release", START_MS, 100);
      } finally {
        await publisher.endAsync();
      }
      await gw.kill("SIGTERM");
    },
    4 * START_MS * TIME_SCALE,
  );
});
