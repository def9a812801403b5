/**
 * The Docker Compose stack, checked without a Docker daemon: `docker-compose config` (Debian's
 * docker-compose package) accepts the file, and everything it points at exists — each
 * Dockerfile, each file a Dockerfile copies from the build context, each bind-mounted config.
 */
import { execFile, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { loadGatewayConfig } from "@datalab/gateway";
import { loadHubConfig } from "@datalab/hub";
import { tempDir, type NatsServer } from "@datalab/shared/testing";
import { startShippedNats } from "./nats-server-config";

const DEPLOY = fileURLToPath(new URL("..", import.meta.url));
const COMPOSE = join(DEPLOY, "compose.yaml");
const NO_MONGO = join(DEPLOY, "compose.no-mongo.yaml");
const API_TOKEN = "compose-test-token-0123456789";
/** Every secret the stack requires; none has a default. */
const SECRETS = {
  DATALAB_API_TOKEN: API_TOKEN,
  DATALAB_PG_PASSWORD: "compose-test-pg",
  DATALAB_JUPYTER_TOKEN: "compose-test-jupyter",
  DATALAB_NATS_HUB_PASSWORD: "compose-test-nats-hub",
  DATALAB_NATS_GATEWAY_PASSWORD: "compose-test-nats-gateway",
};
/** The environment without any DATALAB_ variable of the developer's own. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DATALAB_")));

async function composeConfig(
  files: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = files.flatMap((f) => ["-f", f]);
  return promisify(execFile)(composeBinary(), [...args, "--profile", "sim", "config"], {
    encoding: "utf8",
    cwd: DEPLOY,
    env: { ...cleanEnv(), ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: err.code ?? 1,
      stdout: err.stdout ?? "",
      stderr: err.stderr ?? "",
    }),
  );
}

/** host_ip of a published port, in either of the forms `docker-compose config` prints. */
function publishedOn(p: string | { published: string | number; target: number; host_ip?: string }): string {
  if (typeof p !== "string") return p.host_ip ?? "0.0.0.0";
  const parts = p.split(":");
  return parts.length >= 3 ? parts.slice(0, -2).join(":") : "0.0.0.0";
}

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  profiles?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: (string | { type: string; source: string; target: string })[];
  environment?: Record<string, string>;
  user?: string;
  ports?: (string | { published: string | number; target: number; host_ip?: string })[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments dropped. */
function dockerfileInstructions(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    // Docker drops comment lines, also inside a continued instruction.
    if (line === "" || line.startsWith("#")) continue;
    current += (current ? " " : "") + line.replace(/\\$/, "").trim();
    if (!line.endsWith("\\")) {
      const m = /^(\S+)\s*(.*)$/.exec(current.trim());
      if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
      current = "";
    }
  }
  return out;
}

/** Sources of COPY/ADD from the build context (not from another stage). */
function contextSources(instructions: { op: string; args: string }[]): string[] {
  const sources: string[] = [];
  for (const { op, args } of instructions) {
    if (op !== "COPY" && op !== "ADD") continue;
    const words = args.split(/\s+/).filter(Boolean);
    if (words.some((w) => w.startsWith("--from="))) continue;
    const paths = words.filter((w) => !w.startsWith("--"));
    sources.push(...paths.slice(0, -1));
  }
  return sources;
}

function composeBinary(): string {
  const r = spawnSync("sh", ["-c", "command -v docker-compose"], { encoding: "utf8" });
  const path = r.stdout.trim();
  if (!path)
    throw new Error(
      "docker-compose is not installed: apt-get install -y docker-compose " +
        "(Debian's package; CI's .ci/run must install it)",
    );
  return path;
}

describe("deploy/compose.yaml", () => {
  let services: Record<string, Service>;

  beforeAll(() => {
    // --profile sim: the gateway and simulator services are checked too.
    const r = spawnSync(composeBinary(), ["-f", COMPOSE, "--profile", "sim", "config"], {
      encoding: "utf8",
      cwd: DEPLOY,
      env: { ...cleanEnv(), ...SECRETS },
    });
    expect(r.status, `docker-compose config failed:\n${r.stderr}`).toBe(0);
    services = (parse(r.stdout) as { services: Record<string, Service> }).services;
  });

  it("holds the original DataLab's services plus NATS, the hub, a simulated gateway profile and Jupyter", () => {
    expect(Object.keys(services).sort()).toEqual([
      "gateway",
      "hub",
      "jupyter",
      "mongo",
      "mosquitto",
      "nats",
      "postgres",
      "sensors",
    ]);
    expect(services.gateway!.profiles).toEqual(["sim"]);
    expect(services.sensors!.profiles).toEqual(["sim"]);
    expect(services.hub!.profiles).toBeUndefined();
  });

  it("gives every server a health check, and starts the hub only once NATS and Postgres are healthy", () => {
    for (const name of ["mosquitto", "nats", "postgres", "mongo", "hub", "gateway", "jupyter"]) {
      expect(services[name]!.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(1);
    }
    expect(services.hub!.depends_on).toMatchObject({
      nats: { condition: "service_healthy" },
      postgres: { condition: "service_healthy" },
    });
    expect(services.hub!.environment).toMatchObject({
      DATALAB_NATS_URL: "nats://nats:4222",
      DATALAB_MONGO_URL: "mongodb://mongo:27017/",
    });
    expect(services.hub!.environment!.DATALAB_PG_URL).toBe(
      `postgres://datalab:${SECRETS.DATALAB_PG_PASSWORD}@postgres:5432/datalab`,
    );
    // MongoDB is optional: the hub neither waits for it nor needs it.
    expect(Object.keys(services.hub!.depends_on ?? {})).not.toContain("mongo");
  });

  it("has no placeholder secret: the stack refuses to start without each one, named", async () => {
    for (const name of Object.keys(SECRETS)) {
      const { [name as keyof typeof SECRETS]: _left, ...rest } = SECRETS;
      for (const env of [rest, { ...rest, [name]: "" }]) {
        const r = await composeConfig([COMPOSE], env);
        expect(r.code, `${name} ${name in env ? "empty" : "unset"}`).not.toBe(0);
        expect(r.stderr).toContain(`set ${name}`);
      }
    }
  });

  it("publishes no port on all interfaces by default; an operator opts in per service", async () => {
    const published = Object.entries(services).flatMap(([name, s]) =>
      (s.ports ?? []).map((p) => ({ name, on: publishedOn(p) })),
    );
    expect(published.length).toBeGreaterThanOrEqual(7);
    for (const p of published) expect(p.on, `${p.name} is published on`).toBe("127.0.0.1");
    const r = await composeConfig([COMPOSE], { ...SECRETS, DATALAB_HUB_ADDRESS: "0.0.0.0" });
    const opened = (parse(r.stdout) as { services: Record<string, Service> }).services;
    expect(opened.hub!.ports!.map(publishedOn)).toEqual(["0.0.0.0"]);
    expect(opened.mosquitto!.ports!.map(publishedOn)).toEqual(["127.0.0.1"]);
  });

  it("gives the hub and the gateway every value their real config loaders accept, NATS users included", () => {
    const hub = loadHubConfig({ env: services.hub!.environment! });
    expect(hub.natsUser).toBe("hub");
    expect(hub.natsPassword).toBe(SECRETS.DATALAB_NATS_HUB_PASSWORD);
    expect(hub.streamMaxBytes).toBe(8 * 1024 ** 3);
    expect(hub.mongoUrl).toBe("mongodb://mongo:27017/");
    const gateway = loadGatewayConfig({ env: services.gateway!.environment! });
    expect(gateway.natsUser).toBe(gateway.gatewayId);
    expect(gateway.natsPassword).toBe(SECRETS.DATALAB_NATS_GATEWAY_PASSWORD);
    expect(gateway.natsEnsureStream).toBe(false);
    expect(services.nats!.environment).toEqual({
      DATALAB_NATS_HUB_PASSWORD: SECRETS.DATALAB_NATS_HUB_PASSWORD,
      DATALAB_NATS_GATEWAY_PASSWORD: SECRETS.DATALAB_NATS_GATEWAY_PASSWORD,
    });
    // The stream caps the hub sets fit in the server's file store (8 GiB + 1 GiB of dead letters).
    const fileStoreGiB = Number(
      /max_file_store:\s*(\d+)GB/.exec(readFileSync(join(DEPLOY, "nats/nats.conf"), "utf8"))![1],
    );
    expect(hub.streamMaxBytes + 1024 ** 3).toBeLessThanOrEqual(fileStoreGiB * 1024 ** 3);
  });

  it("runs without MongoDB with compose.no-mongo.yaml: MongoDB not started, hub and Jupyter given no URL", async () => {
    const r = await composeConfig([COMPOSE, NO_MONGO], SECRETS);
    expect(r.code, r.stderr).toBe(0);
    const s = (parse(r.stdout) as { services: Record<string, Service> }).services;
    // In a profile nothing enables: `up` leaves it out.
    expect(s.mongo!.profiles).toEqual(["mongo"]);
    expect(s.hub!.environment!.DATALAB_MONGO_URL).toBe("");
    expect(s.jupyter!.environment!.DATALAB_MONGO_URL).toBe("");
    for (const [name, svc] of Object.entries(s)) expect(Object.keys(svc.depends_on ?? {}), name).not.toContain("mongo");
    expect(loadHubConfig({ env: s.hub!.environment! }).mongoUrl).toBeUndefined();
  });

  it(
    "checks MongoDB's health with mongosh, or with the legacy mongo shell of 4.4 images (stand-in shells: " +
      "no MongoDB here)",
    async () => {
      const test = services.mongo!.healthcheck!.test;
      expect(test[0]).toBe("CMD-SHELL");
      for (const shell of ["mongo", "mongosh"]) {
        const bin = tempDir("datalab-fake-mongo-");
        const log = join(bin, "called");
        writeFileSync(join(bin, shell), `#!/bin/sh\necho "$0 $*" > ${log}\necho 1\n`);
        chmodSync(join(bin, shell), 0o755);
        const r = await promisify(execFile)("/bin/sh", ["-c", test[1]!], { env: { PATH: `${bin}:/usr/bin:/bin` } });
        expect(r.stdout.trim()).toBe("1");
        expect(readFileSync(log, "utf8")).toContain(`${shell} --quiet --eval`);
      }
    },
  );

  it("keeps dependencies, local data and history out of the build context with a root .dockerignore", () => {
    const ignore = readFileSync(join(DEPLOY, "..", ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const p of ["**/node_modules", "**/.data", ".git"]) expect(ignore).toContain(p);
    // Nothing a Dockerfile copies is ignored.
    for (const name of ["hub", "gateway", "sensors", "jupyter"]) {
      const s = services[name]!;
      for (const src of contextSources(
        dockerfileInstructions(readFileSync(join(s.build!.context, s.build!.dockerfile), "utf8")),
      )) {
        expect(
          ignore.some((p) => src.startsWith(p.replace(/\/$/, ""))),
          `${name}: COPY ${src}`,
        ).toBe(false);
      }
    }
  });

  it(
    "puts the hub and the gateway on all container interfaces only with a token, " +
      "which the stack refuses to start without",
    () => {
      for (const name of ["hub", "gateway"])
        expect(services[name]!.environment!.DATALAB_HTTP_HOST, name).toBe("0.0.0.0");
      expect(services.hub!.environment!.DATALAB_API_TOKEN).toBe(API_TOKEN);
      expect(services.gateway!.environment!.DATALAB_HTTP_TOKEN).toBe(API_TOKEN);
      const { DATALAB_API_TOKEN: _unset, ...env } = { ...cleanEnv(), ...SECRETS };
      const r = spawnSync(composeBinary(), ["-f", COMPOSE, "--profile", "sim", "config"], {
        encoding: "utf8",
        cwd: DEPLOY,
        env,
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/set DATALAB_API_TOKEN to a random token of 16\+ characters/);
    },
  );

  it("references only files that exist: Dockerfiles, what they copy from the context, bind-mounted configs", () => {
    const built = Object.entries(services).filter(([, s]) => s.build);
    expect(built.map(([n]) => n).sort()).toEqual(["gateway", "hub", "jupyter", "sensors"]);
    for (const [name, s] of built) {
      const dockerfile = join(s.build!.context, s.build!.dockerfile);
      expect(existsSync(dockerfile), `${name}: ${dockerfile}`).toBe(true);
      const sources = contextSources(dockerfileInstructions(readFileSync(dockerfile, "utf8")));
      expect(sources.length, `${name}: COPY instructions found`).toBeGreaterThan(0);
      for (const src of sources) expect(existsSync(join(s.build!.context, src)), `${name}: COPY ${src}`).toBe(true);
    }
    let binds = 0;
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === "string" ? v.split(":")[0]! : v.source;
        if (!isAbsolute(source)) continue; // a named volume
        binds += 1;
        expect(existsSync(source), `${name}: bind mount ${source}`).toBe(true);
      }
    }
    expect(binds).toBeGreaterThanOrEqual(3); // mosquitto.conf, nats.conf, notebooks
  });

  it("builds every Node.js image in two stages on node:22-bookworm-slim and runs it as a user other than root", () => {
    for (const name of ["hub", "gateway", "sensors", "jupyter"]) {
      const s = services[name]!;
      const ins = dockerfileInstructions(readFileSync(join(s.build!.context, s.build!.dockerfile), "utf8"));
      const froms = ins.filter((i) => i.op === "FROM");
      const lastFrom = ins.lastIndexOf(froms[froms.length - 1]!);
      const user = ins
        .slice(lastFrom)
        .filter((i) => i.op === "USER")
        .pop();
      expect(user?.args, `${name}: USER in the final stage`).toBeDefined();
      expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
      if (name === "jupyter") continue;
      expect(froms.length, `${name}: multi-stage`).toBe(2);
      const arg = ins.find((i) => i.op === "ARG" && i.args.startsWith("NODE_IMAGE="));
      expect(arg?.args).toBe("NODE_IMAGE=node:22-bookworm-slim");
    }
  });

  it("parses Dockerfile instructions across continuation lines and comments", () => {
    const ins = dockerfileInstructions(
      "FROM a AS b\n# note\nRUN x \\\n # inner comment\n && y\nCOPY --from=b /out /app\nCOPY --chown=u:g src/ dst/\n",
    );
    expect(ins.map((i) => i.op)).toEqual(["FROM", "RUN", "COPY", "COPY"]);
    expect(ins[1]!.args).toBe("x && y");
    expect(contextSources(ins)).toEqual(["src/"]);
  });
});

describe("deploy/nats/nats.conf (Compose's NATS)", () => {
  let server: NatsServer;

  beforeAll(async () => {
    for (const k of ["DATALAB_NATS_HUB_PASSWORD", "DATALAB_NATS_GATEWAY_PASSWORD"] as const)
      process.env[k] = SECRETS[k];
    server = await startShippedNats(readFileSync(join(DEPLOY, "nats/nats.conf"), "utf8"), {
      "compose-auth.conf": readFileSync(join(DEPLOY, "nats/compose-auth.conf"), "utf8"),
    });
  });

  afterAll(async () => {
    await server?.kill();
  });

  it("refuses an unauthenticated client and a wrong password", async () => {
    await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/authorization/i);
    await expect(
      connect({ servers: server.url, user: "compose-gateway", pass: "wrong", reconnect: false }),
    ).rejects.toThrow(/authorization/i);
  });

  it("lets the hub manage streams, and the gateway publish only its own subjects (no JetStream API)", async () => {
    const hub = await connect({
      servers: server.url,
      user: "hub",
      pass: SECRETS.DATALAB_NATS_HUB_PASSWORD,
      reconnect: false,
    });
    const jsm = await jetstreamManager(hub);
    expect((await jsm.getAccountInfo()).streams).toBeGreaterThanOrEqual(0);
    await hub.close();
    const errors: string[] = [];
    const gw = await connect({
      servers: server.url,
      user: "compose-gateway",
      pass: SECRETS.DATALAB_NATS_GATEWAY_PASSWORD,
      reconnect: false,
      inboxPrefix: "_INBOX_compose-gateway",
    });
    void (async () => {
      for await (const st of gw.status())
        if (st.type === "error") errors.push(String((st as { error?: unknown }).error));
    })();
    gw.publish("$JS.API.STREAM.LIST", "");
    await gw.flush();
    await expect.poll(() => errors.join(" "), { timeout: 10_000 }).toMatch(/permissions violation/i);
    await gw.close();
  });

  it("gives the hub the permission set of auth.conf", () => {
    const hubBlock = (text: string) => /HUB = \{[\s\S]*?\n {2}\}/.exec(text)?.[0];
    const compose = hubBlock(readFileSync(join(DEPLOY, "nats/compose-auth.conf"), "utf8"));
    expect(compose).toBeDefined();
    expect(compose).toBe(hubBlock(readFileSync(join(DEPLOY, "nats/auth.conf"), "utf8")));
  });
});
