/**
 * The Raspberry Pi install, into a scratch root (DESTDIR): the script passes shellcheck, lays
 * out the expected tree (a gateway that runs, a valid config, a unit systemd-analyze accepts,
 * udev rules, the service user), keeps the config across an upgrade, converts the outbox on a
 * rollback to a release reading an older format, and uninstalls.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import { deflateRawSync } from "node:zlib";
import { loadGatewayConfig, Outbox } from "@datalab/gateway";
import { silentLogger } from "@datalab/shared";
import { OUTBOX_FORMAT } from "../../gateway/src/outbox/schema";
import { type connectionOf, messages, wireMessagesOf } from "../../gateway/test/support/outbox";
import { freePort, runCommand, tempDir, TIME_SCALE, waitFor } from "@datalab/shared/testing";
import { connect } from "node:net";

const PI = fileURLToPath(new URL("../pi/", import.meta.url));
/** SQLite as the gateway has it (a dependency of the gateway, not of deploy). */
const Database = createRequire(fileURLToPath(new URL("../../gateway/package.json", import.meta.url)))(
  "better-sqlite3",
) as new (
  path: string,
  opts?: { readonly?: boolean },
) => ReturnType<typeof connectionOf>;
const INSTALL = join(PI, "install.sh");
const APP = "opt/datalab/gateway";
/** The running release: the unit and the wrapper go through this link. */
const CURRENT = `${APP}/current`;

function requireTool(bin: string, pkg: string): string {
  const path = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).stdout.trim();
  if (!path) throw new Error(`${bin} is not installed: apt-get install -y ${pkg} (CI's .ci/run must install it)`);
  return path;
}

/**
 * An install compiles better-sqlite3 when no build is cached: minutes, more on a busy machine.
 * Run asynchronously so the Vitest worker keeps answering its parent meanwhile.
 */
const INSTALL_MS = 5 * 60_000 * TIME_SCALE;

async function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string }> {
  const r = await runCommand(cmd, args, { env: { ...process.env, ...env }, timeoutMs: INSTALL_MS / TIME_SCALE });
  return { code: r.code, out: `${r.stdout}${r.stderr}` };
}

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

const scratch = tempDir("datalab-pi-");
const root = join(scratch, "root");

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("deploy/pi/install.sh", () => {
  it("passes shellcheck, as does the command wrapper it installs", async () => {
    const r = await run(requireTool("shellcheck", "shellcheck"), ["-x", INSTALL, join(PI, "datalab-gateway.sh")]);
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  });

  it("refuses flags that do not go together, and an upgrade with nothing installed", async () => {
    const purge = await run("bash", [INSTALL, "--purge"], { DESTDIR: join(scratch, "empty") });
    expect(purge.code).not.toBe(0);
    expect(purge.out).toMatch(/--purge goes with --uninstall/);
    const upgrade = await run("bash", [INSTALL, "--upgrade"], { DESTDIR: join(scratch, "empty") });
    expect(upgrade.code).not.toBe(0);
    expect(upgrade.out).toMatch(/no installed gateway to upgrade/);
    const rollback = await run("bash", [INSTALL, "--rollback"], { DESTDIR: join(scratch, "empty") });
    expect(rollback.code).not.toBe(0);
    expect(rollback.out).toMatch(/no previous release to roll back to/);
    const both = await run("bash", [INSTALL, "--from", "a.tar.gz", "--prebuilt", "b"], {
      DESTDIR: join(scratch, "empty"),
    });
    expect(both.code).not.toBe(0);
    expect(both.out).toMatch(/--from and --prebuilt do not go together/);
    expect(existsSync(join(scratch, "empty", APP))).toBe(false);
  });
});

describe("install into a scratch root", () => {
  beforeAll(async () => {
    const r = await run("bash", [INSTALL, "--with-mosquitto", "--no-start"], { DESTDIR: root });
    expect(r.code, r.out).toBe(0);
  }, INSTALL_MS + 60_000);

  it("lays out the expected tree, with private config files", async () => {
    const expected: [string, string][] = [
      [`${CURRENT}/dist/cli.mjs`, "644"],
      [`${CURRENT}/package.json`, "644"],
      ["etc/systemd/system/datalab-gateway.service", "644"],
      ["etc/udev/rules.d/99-datalab-radio.rules", "644"],
      ["usr/lib/sysusers.d/datalab.conf", "644"],
      ["usr/local/bin/datalab-gateway", "755"],
      ["etc/datalab", "750"],
      ["etc/datalab/gateway.json", "640"],
      ["etc/datalab/gateway.env", "640"],
      ["etc/mosquitto/conf.d/datalab.conf", "644"],
    ];
    for (const [path, m] of expected) {
      expect(existsSync(join(root, path)), path).toBe(true);
      expect(mode(join(root, path)), path).toBe(m);
    }
    expect(existsSync(join(root, CURRENT, "node_modules/better-sqlite3/package.json"))).toBe(true);
    expect(existsSync(join(root, CURRENT, "test"))).toBe(false);
    // Placeholders all filled in.
    for (const f of [
      "etc/systemd/system/datalab-gateway.service",
      "usr/local/bin/datalab-gateway",
      "etc/datalab/gateway.json",
    ]) {
      expect(readFileSync(join(root, f), "utf8"), f).not.toMatch(/@[A-Z_]+@/);
    }
  });

  it("installs a gateway that runs on this machine, with a config file it accepts", async () => {
    const help = await run(process.execPath, [join(root, CURRENT, "dist/cli.mjs"), "run", "--help"]);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toContain("DATALAB_NATS_URL");
    const cfg = loadGatewayConfig({ env: {}, file: join(root, "etc/datalab/gateway.json") });
    expect(cfg.gatewayId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(cfg.outboxMaxBytes).toBe(1024 ** 3);
    expect(cfg.synchronous).toBe("FULL");
  });

  it("installs a hardened unit that systemd-analyze verify accepts", async () => {
    const unit = join(root, "etc/systemd/system/datalab-gateway.service");
    const text = readFileSync(unit, "utf8");
    for (const line of [
      "User=datalab",
      "SupplementaryGroups=dialout",
      "StateDirectory=datalab",
      "Restart=always",
      "StartLimitBurst=10",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "DevicePolicy=closed",
      "DeviceAllow=char-ttyUSB rw",
      "DeviceAllow=char-ttyACM rw",
      "StandardOutput=journal",
      "Environment=DATALAB_CONFIG=/etc/datalab/gateway.json",
      "EnvironmentFile=-/etc/datalab/gateway.env",
    ]) {
      expect(text.split("\n"), line).toContain(line);
    }
    expect(text).toMatch(
      new RegExp(
        `^ExecStart=/\\S*node --max-semi-space-size=1 --max-old-space-size=64 /${CURRENT}/dist/cli.mjs run$`,
        "m",
      ),
    );
    // verify prints what it objects to (unknown keys, bad values, missing binaries) on stderr.
    const r = await runCommand(requireTool("systemd-analyze", "systemd"), ["verify", unit]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("declares the service user in dialout, which systemd-sysusers creates", async () => {
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    writeFileSync(join(root, "etc/group"), "root:x:0:\ndialout:x:20:\n");
    try {
      const r = await run(requireTool("systemd-sysusers", "systemd"), [`--root=${root}`]);
      expect(r.code, r.out).toBe(0);
      expect(readFileSync(join(root, "etc/passwd"), "utf8")).toMatch(
        /^datalab:x:\d+:\d+:[^:]*:\/var\/lib\/datalab:\/usr\/sbin\/nologin$/m,
      );
      expect(readFileSync(join(root, "etc/group"), "utf8")).toMatch(/^dialout:x:20:datalab$/m);
    } finally {
      for (const f of ["passwd", "group", "shadow", "gshadow"]) rmSync(join(root, "etc", f), { force: true });
    }
  });

  it("gives radios stable names in dialout", async () => {
    const rules = readFileSync(join(root, "etc/udev/rules.d/99-datalab-radio.rules"), "utf8");
    const active = rules.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
    expect(active.filter((l) => l.includes('SYMLINK+="datalab-radio-')).length).toBe(2);
    for (const l of active.filter((x) => x.includes("SYMLINK"))) expect(l).toContain('GROUP="dialout", MODE="0660"');
  });

  it("installs a Mosquitto config that Mosquitto accepts, with persistence from Debian's main file", async () => {
    const mosquitto = requireTool("mosquitto", "mosquitto");
    const dir = join(scratch, "mosquitto");
    mkdirSync(join(dir, "conf.d"), { recursive: true });
    const port = await freePort();
    // Debian's main file, reduced to what the DataLab file relies on; the port moved off 1883.
    writeFileSync(
      join(dir, "mosquitto.conf"),
      `persistence true\npersistence_location ${dir}/\ninclude_dir ${dir}/conf.d\n`,
    );
    writeFileSync(
      join(dir, "conf.d/datalab.conf"),
      readFileSync(join(root, "etc/mosquitto/conf.d/datalab.conf"), "utf8").replace(
        "listener 1883 127.0.0.1",
        `listener ${port} 127.0.0.1`,
      ),
    );
    const proc = spawn(mosquitto, ["-c", join(dir, "mosquitto.conf")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(
        () =>
          new Promise<boolean>((resolve, reject) => {
            if (proc.exitCode !== null) reject(new Error(`mosquitto exited ${proc.exitCode}: ${out}`));
            const s = connect(port, "127.0.0.1");
            s.once("connect", () => (s.destroy(), resolve(true)));
            s.once("error", () => resolve(false));
          }),
        "mosquitto to accept the DataLab config",
        10_000,
      );
    } finally {
      proc.kill("SIGTERM");
    }
  });

  it(
    "upgrades the code beside the old release, keeps the edited config, and rolls back",
    async () => {
      const json = join(root, "etc/datalab/gateway.json");
      const edited = readFileSync(json, "utf8").replace("nats://hub.example.org:4222", "nats://hub.test:4222");
      writeFileSync(json, edited);
      writeFileSync(join(root, CURRENT, "old-release-marker"), "");
      // --prebuilt: the install from a built folder (what a machine without a checkout uses).
      const built = join(scratch, "built");
      cpSync(join(root, CURRENT), built, { recursive: true, dereference: true });
      rmSync(join(built, "old-release-marker"));
      const r = await run("bash", [INSTALL, "--upgrade", "--prebuilt", built], { DESTDIR: root });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain("kept");
      expect(readFileSync(json, "utf8")).toBe(edited);
      expect(existsSync(join(root, CURRENT, "dist/cli.mjs"))).toBe(true);
      expect(existsSync(join(root, CURRENT, "old-release-marker"))).toBe(false);
      // The release it replaced stays beside it, for --rollback.
      expect(existsSync(join(root, APP, "previous/old-release-marker"))).toBe(true);
      const back = await run("bash", [INSTALL, "--rollback"], { DESTDIR: root });
      expect(back.code, back.out).toBe(0);
      expect(existsSync(join(root, CURRENT, "old-release-marker"))).toBe(true);
      expect(existsSync(join(root, APP, "previous/old-release-marker"))).toBe(false);
    },
    INSTALL_MS,
  );

  it(
    "rolls back to a release reading an older outbox format only after converting the outbox",
    async () => {
      const base = join(root, APP);
      // A build from the checkout names the format its code writes.
      expect(readFileSync(join(root, CURRENT, "OUTBOX_FORMAT"), "utf8")).toBe(`${OUTBOX_FORMAT}\n`);
      // Two releases, told apart by the format they read; the older one stands for a release
      // from before packed rows.
      for (const [name, format] of [
        ["reads-3", "3"],
        [`reads-${OUTBOX_FORMAT}`, `${OUTBOX_FORMAT}`],
      ] as const) {
        const built = join(scratch, name);
        cpSync(join(root, CURRENT), built, { recursive: true, dereference: true });
        writeFileSync(join(built, "OUTBOX_FORMAT"), `${format}\n`);
        writeFileSync(join(built, "marker"), name);
        const r = await run("bash", [INSTALL, "--upgrade", "--prebuilt", built], { DESTDIR: root });
        expect(r.code, r.out).toBe(0);
      }
      expect(readFileSync(join(base, "previous/marker"), "utf8")).toBe("reads-3");

      // A format-5 outbox as the running release leaves it (wire format 2), half its rows packed.
      const path = join(root, "var/lib/datalab/outbox.db");
      mkdirSync(join(root, "var/lib/datalab"), { recursive: true });
      rmSync(path, { force: true });
      const outbox = Outbox.open(path, { logger: silentLogger() });
      outbox.commit(messages(1, 120));
      outbox.close();
      const db = new Database(path);
      const texts = db
        .prepare<[], { id: number; wire: string }>("SELECT id, wire FROM outbox WHERE packed IS NULL ORDER BY id")
        .all();
      expect(texts.length).toBeGreaterThan(2);
      expect(texts.every((r) => r.wire.startsWith("["))).toBe(true);
      const pack = db.prepare<[Buffer, number]>("UPDATE outbox SET wire = '', packed = ? WHERE id = ?");
      for (const r of texts.filter((_, i) => i % 2 === 0)) pack.run(deflateRawSync(r.wire, { level: 1 }), r.id);
      db.close();

      // A gateway with the file open: the outbox is not converted, and the release not switched.
      const held = Outbox.open(path, { logger: silentLogger() });
      try {
        const refused = await run("bash", [INSTALL, "--rollback"], { DESTDIR: root });
        expect(refused.code, refused.out).not.toBe(0);
        expect(refused.out).toMatch(/not rolled back.*the outbox is in use: stop the gateway first/);
        expect(readFileSync(join(root, CURRENT, "marker"), "utf8")).toBe(`reads-${OUTBOX_FORMAT}`);
      } finally {
        held.close();
      }

      const back = await run("bash", [INSTALL, "--rollback"], { DESTDIR: root });
      expect(back.code, back.out).toBe(0);
      expect(back.out).toMatch(/converted from format 5 to 3/);
      expect(readFileSync(join(root, CURRENT, "marker"), "utf8")).toBe("reads-3");
      expect(readFileSync(join(base, "previous/marker"), "utf8")).toBe(`reads-${OUTBOX_FORMAT}`);
      const after = new Database(path, { readonly: true });
      try {
        expect(after.pragma("user_version", { simple: true })).toBe(3);
        const columns = after.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('outbox')").all();
        expect(columns.map((c) => c.name)).not.toContain("packed");
        // Every row back as text, in wire format 1, holding the same messages.
        const rows = after.prepare<[], { id: number; wire: string }>("SELECT id, wire FROM outbox ORDER BY id").all();
        expect(rows.map((r) => r.id)).toEqual(texts.map((r) => r.id));
        expect(rows.every((r) => r.wire.startsWith("{"))).toBe(true);
        expect(rows.flatMap((r) => wireMessagesOf(r.wire))).toEqual(texts.flatMap((r) => wireMessagesOf(r.wire)));
      } finally {
        after.close();
      }

      // Forward again to the release reading the current format (no conversion that way), and back: the
      // file already in format 3 is left as it is.
      const again = await run("bash", [INSTALL, "--rollback"], { DESTDIR: root });
      expect(again.code, again.out).toBe(0);
      expect(again.out).not.toMatch(/converting the outbox/);
    },
    INSTALL_MS,
  );

  it("uninstalls, keeping config and outbox unless purged", async () => {
    mkdirSync(join(root, "var/lib/datalab"), { recursive: true });
    writeFileSync(join(root, "var/lib/datalab/outbox.db"), "");
    const r = await run("bash", [INSTALL, "--uninstall"], { DESTDIR: root });
    expect(r.code, r.out).toBe(0);
    for (const gone of [
      APP,
      "etc/systemd/system/datalab-gateway.service",
      "etc/udev/rules.d/99-datalab-radio.rules",
      "usr/local/bin/datalab-gateway",
    ]) {
      expect(existsSync(join(root, gone)), gone).toBe(false);
    }
    expect(existsSync(join(root, "etc/datalab/gateway.json"))).toBe(true);
    expect(existsSync(join(root, "var/lib/datalab/outbox.db"))).toBe(true);
    const purge = await run("bash", [INSTALL, "--uninstall", "--purge"], { DESTDIR: root });
    expect(purge.code, purge.out).toBe(0);
    expect(existsSync(join(root, "etc/datalab"))).toBe(false);
    expect(existsSync(join(root, "var/lib/datalab"))).toBe(false);
  });
});
