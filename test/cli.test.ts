/**
 * The command lines are a contract: help lists every option and variable; bad config fails at
 * start, clearly. And each run as a child process as a person or a script would: per-command
 * help, one line and exit 2 for an unknown flag, status exit codes when what they check is
 * down, the demo's outbox found, and the quarantine listed as text.
 */
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import {
  deleteStreams,
  createTestDatabase,
  MQTT_URL,
  NATS_URL,
  runCommand,
  tempDir,
  uniqueId,
  waitFor,
} from "@datalab/shared/testing";
import { type Gateway, gatewayFields } from "@datalab/gateway";
import { hubFields } from "@datalab/hub";
import { startGateway as startTestGateway } from "./support/pipeline";

const root = new URL("..", import.meta.url).pathname;
const tsx = (script: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCommand("node", ["--import", "tsx", join(root, script), ...args], {
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
  });
const gatewayCli = (args: string[], env: NodeJS.ProcessEnv = {}) => tsx("gateway/src/cli.ts", args, env);
const cli = (pkg: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCommand(
    process.execPath,
    ["--import", "tsx", `${fileURLToPath(new URL("..", import.meta.url))}${pkg}/src/cli.ts`, ...args],
    { env: { ...process.env, ...env }, timeoutMs: 30_000 },
  );

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe("command lines: help and configuration", () => {
  it.each([
    ["gateway", gatewayFields],
    ["hub", hubFields],
  ] as const)("%s: the run command's help lists every environment variable", async (pkg, fields) => {
    const r = await cli(pkg, ["run", "--help"]);
    expect(r.code).toBe(0);
    for (const f of Object.values(fields)) expect(r.stdout).toContain(f.env);
  });

  it("sensors --help lists the simulator's options", async () => {
    const r = await cli("sensors", ["--help"]);
    expect(r.code).toBe(0);
    for (const opt of ["--sensors", "--rate", "--seed", "DATALAB_MQTT_URL"]) expect(r.stdout).toContain(opt);
  });

  it("the gateway refuses wrong values at start, naming each variable and what was expected", async () => {
    const r = await cli("gateway", ["run"], {
      DATALAB_HTTP_PORT: "eighty",
      DATALAB_MQTT_URL: "http://127.0.0.1:1883",
      DATALAB_GATEWAY_ID: "has space",
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/DATALAB_HTTP_PORT="eighty": expected an integer from 0 to 65535/);
    expect(r.stderr).toMatch(/DATALAB_MQTT_URL="http:\/\/127.0.0.1:1883": expected a URL starting with mqtt:\/\//);
    expect(r.stderr).toMatch(/DATALAB_GATEWAY_ID="has space": expected 1-64 letters, digits/);
  });

  it("the hub refuses a wrong database URL at start", async () => {
    const r = await cli("hub", ["run"], { DATALAB_PG_URL: "mysql://localhost/x", DATALAB_MONGO_URL: "nope" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /DATALAB_PG_URL="mysql:\/\/localhost\/x": expected a URL starting with postgres:\/\/ or postgresql:\/\//,
    );
    expect(r.stderr).toMatch(/DATALAB_MONGO_URL="nope": expected a URL/);
  });

  it("an unknown command says so", async () => {
    const r = await cli("gateway", ["fly"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "fly"/);
  });
});

describe("command lines", () => {
  it("--help per command lists that command's options and variables only", async () => {
    const run = await gatewayCli(["run", "--help"]);
    const status = await gatewayCli(["status", "--help"]);
    const quarantine = await gatewayCli(["quarantine", "--help"]);
    for (const r of [run, status, quarantine]) expect(r.code, r.stderr).toBe(0);
    expect(run.stdout).toContain("DATALAB_MQTT_URL");
    expect(status.stdout).toContain("DATALAB_DATA_DIR");
    expect(status.stdout).not.toContain("DATALAB_MQTT_URL");
    expect(status.stdout).not.toContain("--reason");
    expect(quarantine.stdout).toContain("--reason");
    expect(quarantine.stdout).not.toContain("DATALAB_NATS_URL");
    const hubStatus = await tsx("hub/src/cli.ts", ["status", "--help"]);
    expect(hubStatus.stdout).toContain("DATALAB_NATS_URL");
    expect(hubStatus.stdout).not.toContain("DATALAB_PG_POOL_SIZE");
    expect(hubStatus.stdout).not.toContain("--replay");
    const simulate = await tsx("sensors/src/cli.ts", ["simulate", "--help"]);
    expect(simulate.code).toBe(0);
    expect(simulate.stdout).toContain("--sensors");
    expect(simulate.stdout).not.toContain("replay FILE");
    expect(simulate.stdout).not.toContain("--gateway");
    const replay = await tsx("sensors/src/cli.ts", ["replay", "--help"]);
    expect(replay.stdout).toContain("--gateway");
    expect(replay.stdout).not.toContain("--sensors N");
  });

  it("an unknown flag is one line naming it, exit 2: gateway, hub, sensors, bench", async () => {
    const runs = await Promise.all([
      gatewayCli(["run", "--bogus"]),
      gatewayCli(["status", "--since", "1h"]),
      tsx("hub/src/cli.ts", ["status", "--bogus"]),
      tsx("sensors/src/cli.ts", ["simulate", "--bogus"]),
      tsx("bench/run.ts", ["--bogus"]),
    ]);
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/unknown option '--(bogus|since)'/);
      expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
    }
  });

  it("pnpm hub status exits 1 when Postgres is not reachable, and says so", async () => {
    const r = await tsx("hub/src/cli.ts", ["status"], {
      DATALAB_PG_URL: "postgres://postgres@127.0.0.1:1/test",
      DATALAB_NATS_URL: NATS_URL,
    });
    expect(r.stdout).toContain("postgres: not reachable");
    expect(r.code).toBe(1);
  });

  it("Ctrl-C through pnpm stops hub run, gateway run and sensors simulate cleanly: exit 0, their last words logged, " +
    "nothing printed as a failure", async () => {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    const id = uniqueId("ctrlc");
    cleanup.push(() => deleteStreams(id));
    const common = {
      DATALAB_NATS_URL: NATS_URL,
      DATALAB_NATS_PREFIX: id,
      DATALAB_HTTP_PORT: "0",
      DATALAB_HTTP_HOST: "127.0.0.1",
      DATALAB_LOG_LEVEL: "info",
    };
    // The simulator is running once its first message arrives.
    const sub = await mqtt.connectAsync(MQTT_URL);
    cleanup.push(() => sub.endAsync());
    let simulated = 0;
    sub.on("message", () => (simulated += 1));
    await sub.subscribeAsync(`${id}/sim/#`);
    const [hub, gateway, simulate] = await Promise.all([
      ctrlC(["hub", "run"], { ...common, DATALAB_PG_URL: db.url }, /"hub started"/),
      ctrlC(
        ["gateway", "run"],
        {
          ...common,
          DATALAB_GATEWAY_ID: id,
          DATALAB_DATA_DIR: tempDir("datalab-ctrlc-"),
          DATALAB_MQTT_URL: MQTT_URL,
          DATALAB_MQTT_TOPICS: `${id}/#`,
          DATALAB_MQTT_RTL433_TOPICS: "",
          DATALAB_MQTT_PERSISTENT: "false",
        },
        /"gateway started"/,
      ),
      ctrlC(
        ["sensors", "simulate", "--topic", `${id}/sim`, "--sensors", "2", "--interval", "1"],
        { DATALAB_MQTT_URL: MQTT_URL },
        () => simulated > 0,
      ),
    ]);
    for (const [name, r, last] of [
      ["hub", hub, /"hub stopped"/],
      ["gateway", gateway, /"drained":true/],
      ["simulate", simulate, /simulated \d+ reading cycles/],
    ] as const) {
      expect({ name, code: r.code, signal: r.signal }, r.output.slice(-1500)).toEqual({ name, code: 0, signal: null });
      expect(r.output, name).toMatch(last);
      expect(r.output, name).not.toMatch(/ELIFECYCLE|Command failed|second signal/);
    }
  }, 120_000);

  it("pnpm gateway status finds the demo's outbox when the default DATALAB_DATA_DIR holds none", async () => {
    const cwd = tempDir("datalab-cli-");
    const demoDir = join(cwd, "demo");
    const gw = await startGateway(join(demoDir, "gateway"));
    await gw.stop();
    // Run from `cwd`, where the gateway's default .data/gateway holds no outbox.
    const loader = new URL("../node_modules/tsx/dist/loader.mjs", import.meta.url).href;
    const status = await runCommand(
      "sh",
      [
        "-c",
        'cd "$1" && exec node --import "$2" "$3" status --json',
        "sh",
        cwd,
        loader,
        join(root, "gateway/src/cli.ts"),
      ],
      {
        env: { ...process.env, DATALAB_DEMO_DIR: demoDir, DATALAB_DATA_DIR: "", DATALAB_HTTP_PORT: "1" },
      },
    );
    expect(status.code, status.stderr).toBe(3);
    expect((JSON.parse(status.stdout) as { outbox: { path: string } }).outbox.path).toBe(
      join(demoDir, "gateway", "outbox.db"),
    );
  });

  it(
    "pnpm gateway quarantine lists refused payloads as text (markup and escape sequences quoted), " +
      "filtered by --reason and --since",
    async () => {
      const dir = tempDir("datalab-cli-q-");
      const id = uniqueId("cliq");
      const gw = await startGateway(dir, id);
      const c = await mqtt.connectAsync(MQTT_URL);
      const xss = "<img src=x onerror=alert(1)>";
      await c.publishAsync(`${id}/sensors/a`, "{'name': 'sensor1'}", { qos: 1 });
      await c.publishAsync(`${id}/sensors/b`, `${xss}\u001b[2J`, { qos: 1 });
      await c.endAsync();
      await waitFor(
        () => Object.values(gw.status().quarantine).reduce((a, b) => a + b, 0) >= 2,
        "two payloads quarantined",
      );
      await gw.stop();
      const env = { DATALAB_DATA_DIR: dir };

      const text = await gatewayCli(["quarantine"], env);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/^2 quarantined payloads in /);
      expect(text.stdout).toContain(JSON.stringify(`${xss}\u001b[2J`));
      expect(text.stdout).not.toContain("\u001b");
      expect(text.stdout).toContain(`payload: "{'name': 'sensor1'}"`);

      const json = await gatewayCli(["quarantine", "--json", "--since", "1h"], env);
      const r = JSON.parse(json.stdout) as {
        total: number;
        entries: { reason: string; payload: string; source: string }[];
      };
      expect(r.total).toBe(2);
      expect(r.entries.map((e) => e.payload)).toEqual([`${xss}\u001b[2J`, "{'name': 'sensor1'}"]);
      const reason = r.entries[0]!.reason;
      const only = JSON.parse((await gatewayCli(["quarantine", "--json", "--reason", reason], env)).stdout) as {
        total: number;
      };
      expect(only.total).toBe(r.entries.filter((e) => e.reason === reason).length);
      const future = JSON.parse(
        (await gatewayCli(["quarantine", "--json", "--since", new Date(Date.now() + 3_600_000).toISOString()], env))
          .stdout,
      ) as { total: number };
      expect(future.total).toBe(0);
    },
  );
});

/** A command through pnpm in its own process group, stopped as a terminal's Ctrl-C does: SIGINT to the whole group. */
async function ctrlC(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp | (() => boolean),
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawn("pnpm", args, {
    cwd: root,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  try {
    await waitFor(
      () => (typeof ready === "function" ? ready() : ready.test(output)),
      `${args.join(" ")} to start`,
      60_000,
    );
  } catch (err) {
    process.kill(-child.pid!, "SIGKILL");
    throw err;
  }
  process.kill(-child.pid!, "SIGINT");
  return { ...(await closed), output };
}

async function startGateway(dataDir: string, id = uniqueId("cli")): Promise<Gateway> {
  mkdirSync(dataDir, { recursive: true });
  const gw = await startTestGateway({
    id,
    gatewayId: id,
    dataDir,
    env: { DATALAB_MQTT_RTL433_TOPICS: "", DATALAB_MQTT_PERSISTENT: "false" },
  });
  cleanup.push(() => deleteStreams(id));
  return gw;
}
