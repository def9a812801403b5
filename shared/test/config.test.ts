import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { bool, ConfigError, describeConfig, field, intIn, loadConfig, redact, stringList, urlOf } from "../src/index";
import { tempDir } from "../testing/index";

const fields = {
  url: field("T_URL", urlOf(["mqtt"], "mqtt://127.0.0.1:1883"), "broker"),
  port: field("T_PORT", intIn(0, 65535, 8080), "port"),
  flag: field("T_FLAG", bool(false), "a flag"),
  list: field("T_LIST", stringList(["a", "b"]), "a list"),
  secret: field("T_SECRET", z.string().optional(), "a secret", { secret: true }),
};

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("configuration", () => {
  it("gives the defaults when nothing is set", () => {
    expect(loadConfig(fields, { env: {} })).toEqual({
      url: "mqtt://127.0.0.1:1883",
      port: 8080,
      flag: false,
      list: ["a", "b"],
      secret: undefined,
    });
  });

  it("reads and converts environment variables", () => {
    const c = loadConfig(fields, {
      env: { T_URL: "mqtt://broker:1884", T_PORT: "9000", T_FLAG: "yes", T_LIST: "x, y,,z" },
    });
    expect(c).toMatchObject({ url: "mqtt://broker:1884", port: 9000, flag: true, list: ["x", "y", "z"] });
  });

  it("reports every wrong value at once, naming the variable and what was expected", () => {
    const p = problems(() => loadConfig(fields, { env: { T_URL: "http://x", T_PORT: "eighty", T_FLAG: "maybe" } }));
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/^T_URL="http:\/\/x": expected a URL starting with mqtt:\/\//);
    expect(p[1]).toMatch(/^T_PORT="eighty": expected an integer from 0 to 65535/);
    expect(p[2]).toMatch(/^T_FLAG="maybe": expected true or false/);
  });

  it("lets a config file add values, and the environment win over it", () => {
    const file = join(tempDir(), "c.json");
    writeFileSync(file, JSON.stringify({ port: 7000, list: ["f"], url: "mqtt://file:1" }));
    const c = loadConfig(fields, { env: { T_URL: "mqtt://env:2" }, file });
    expect(c).toMatchObject({ port: 7000, list: ["f"], url: "mqtt://env:2" });
  });

  it("names the key and the file for a wrong value or an unknown key in the file", () => {
    const file = join(tempDir(), "c.json");
    writeFileSync(file, JSON.stringify({ port: 70000, colour: "red" }));
    const p = problems(() => loadConfig(fields, { env: {}, file }));
    expect(p.join("\n")).toMatch(/unknown key "colour"/);
    expect(p.join("\n")).toMatch(/"port" in .*c\.json=70000: expected an integer from 0 to 65535/);
  });

  it("reports a config file that is not JSON", () => {
    const file = join(tempDir(), "c.json");
    writeFileSync(file, "port: 1");
    expect(problems(() => loadConfig(fields, { env: {}, file }))[0]).toMatch(/config file .*c\.json: .*JSON/);
  });

  it("never shows a secret's value: not in errors, help or redacted output", () => {
    const withSecretCheck = { s: field("T_S", z.string().min(10, "too short"), "secret", { secret: true }) };
    const p = problems(() => loadConfig(withSecretCheck, { env: { T_S: "hunter2" } }));
    expect(p[0]).not.toContain("hunter2");
    const c = loadConfig(fields, { env: { T_SECRET: "hunter2", T_URL: "mqtt://user:pw@host:1" } });
    const shown = JSON.stringify(redact(fields, c));
    expect(shown).not.toContain("hunter2");
    expect(shown).not.toContain(":pw@");
    expect(describeConfig(fields)).toContain("T_SECRET");
  });
});
