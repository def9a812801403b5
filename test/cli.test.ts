/** The command lines are a contract: help lists every option and variable; bad config fails at start, clearly. */
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCommand } from "@datalab/shared/testing";
import { gatewayFields } from "@datalab/gateway";
import { hubFields } from "@datalab/hub";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = (pkg: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCommand(process.execPath, ["--import", "tsx", `${root}${pkg}/src/cli.ts`, ...args], { env: { ...process.env, ...env }, timeoutMs: 30_000 });

describe("command lines", () => {
  it.each([
    ["gateway", gatewayFields],
    ["hub", hubFields],
  ] as const)("%s --help lists every environment variable", async (pkg, fields) => {
    const r = await cli(pkg, ["--help"]);
    expect(r.code).toBe(0);
    for (const f of Object.values(fields)) expect(r.stdout).toContain(f.env);
  });

  it("sensors --help lists the simulator's options", async () => {
    const r = await cli("sensors", ["--help"]);
    expect(r.code).toBe(0);
    for (const opt of ["--sensors", "--rate", "--seed", "DATALAB_MQTT_URL"]) expect(r.stdout).toContain(opt);
  });

  it("the gateway refuses wrong values at start, naming each variable and what was expected", async () => {
    const r = await cli("gateway", ["run"], { DATALAB_HTTP_PORT: "eighty", DATALAB_MQTT_URL: "http://127.0.0.1:1883", DATALAB_GATEWAY_ID: "has space" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/DATALAB_HTTP_PORT="eighty": expected an integer from 0 to 65535/);
    expect(r.stderr).toMatch(/DATALAB_MQTT_URL="http:\/\/127.0.0.1:1883": expected a URL starting with mqtt:\/\//);
    expect(r.stderr).toMatch(/DATALAB_GATEWAY_ID="has space": expected 1-64 letters, digits/);
  });

  it("the hub refuses a wrong database URL at start", async () => {
    const r = await cli("hub", ["run"], { DATALAB_PG_URL: "mysql://localhost/x", DATALAB_MONGO_URL: "nope" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/DATALAB_PG_URL="mysql:\/\/localhost\/x": expected a URL starting with postgres:\/\/ or postgresql:\/\//);
    expect(r.stderr).toMatch(/DATALAB_MONGO_URL="nope": expected a URL/);
  });

  it("an unknown command says so and shows the help", async () => {
    const r = await cli("gateway", ["fly"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "fly"/);
  });
});
